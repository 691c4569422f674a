"""The report asset: the CX report (one self-contained HTML file) built with the marts."""

import dagster as dg

from cx_pipeline.defs.marts import MARTS
from cx_pipeline.defs.partitions import DAILY, ONE_RUN, partition_days
from cx_pipeline.defs.resources import CxPaths
from cx_pipeline.lib.report import REPORT_DAYS, report_window, write_report
from cx_pipeline.settings import SETTINGS


@dg.asset(
    name="cx_report",
    group_name="report",
    deps=[spec.name for mart in MARTS for spec in mart.specs],
    partitions_def=DAILY,
    backfill_policy=ONE_RUN,
    kinds={"html"},
    description=f"The CX report of the {REPORT_DAYS} days up to the run's last day: NPS and "
    "CSAT with their margins, response and resolution percentiles, SLA, backlog by age, "
    "topics and their movers, churn, cohorts, repeat contacts, channel mix. One HTML file "
    "beside the Parquet output, viewable offline.",
)
def cx_report(context: dg.AssetExecutionContext, paths: CxPaths) -> dg.MaterializeResult:
    start, end = report_window(partition_days(context)[-1], SETTINGS.start_date)
    path = write_report(paths.output, start, end)
    return dg.MaterializeResult(
        metadata={"path": dg.MetadataValue.path(str(path)), "days": (end - start).days + 1}
    )
