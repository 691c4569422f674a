"""Everything Dagster loads: assets, job, schedule, resources."""

from __future__ import annotations

import dagster as dg

from cx_pipeline.defs.checks import ASSET_CHECKS, REFERENCE_CHECKS
from cx_pipeline.defs.marts import MART_ASSETS
from cx_pipeline.defs.pulls import PULL_ASSETS
from cx_pipeline.defs.raw import RAW_ASSETS
from cx_pipeline.defs.rejects import stg_rejects
from cx_pipeline.defs.report import cx_report
from cx_pipeline.defs.resources import default_resources
from cx_pipeline.defs.schedules import DAILY_JOB, RUN_EXECUTOR, cx_daily_schedule
from cx_pipeline.defs.sensors import late_drops_sensor, late_rows_sensor
from cx_pipeline.defs.staging import STAGING_ASSETS
from cx_pipeline.defs.state import STATE_ASSETS

ASSETS = [
    *PULL_ASSETS,
    *RAW_ASSETS,
    *STAGING_ASSETS,
    *STATE_ASSETS,
    stg_rejects,
    *MART_ASSETS,
    cx_report,
]
# What one partitioned run materialises and checks.
RUNNABLE = [*ASSETS, *REFERENCE_CHECKS]

defs = dg.Definitions(
    assets=ASSETS,
    asset_checks=ASSET_CHECKS,
    jobs=[DAILY_JOB],
    schedules=[cx_daily_schedule],
    sensors=[late_drops_sensor, late_rows_sensor],
    resources=default_resources(),
    executor=RUN_EXECUTOR,
)


def daily_job() -> dg.JobDefinition:
    """cx_daily, rebuilt by name in each step process of a multiprocess run."""
    return defs.resolve_job_def(DAILY_JOB.name)
