"""Everything Dagster loads: assets, job, schedule, resources."""

from __future__ import annotations

import dagster as dg

from cx_pipeline.defs.marts import MART_ASSETS
from cx_pipeline.defs.raw import RAW_ASSETS
from cx_pipeline.defs.resources import default_resources
from cx_pipeline.defs.schedules import DAILY_JOB, cx_daily_schedule
from cx_pipeline.defs.staging import STAGING_ASSETS

ASSETS = [*RAW_ASSETS, *STAGING_ASSETS, *MART_ASSETS]

defs = dg.Definitions(
    assets=ASSETS,
    jobs=[DAILY_JOB],
    schedules=[cx_daily_schedule],
    resources=default_resources(),
)
