"""State carried from day to day (``int_<entity>``): Parquet only, read by the marts.

A carried table's day is its previous day plus one day of drops, so a day's cost does not
grow with years of history. Each declares a dependency on its own previous day, so
backfills run it in date order. (The live tickets are carried by the tickets mart
itself, which is their only reader: lib/store/ticket_state.py.)
"""

from collections.abc import Iterator

import dagster as dg

from cx_pipeline.defs.days import DayResults
from cx_pipeline.defs.partitions import DAILY, ONE_RUN, days_back, own_previous_day, partition_days
from cx_pipeline.defs.resources import CxPaths
from cx_pipeline.defs.schedules import step_priority
from cx_pipeline.lib.quality import partition_rows
from cx_pipeline.lib.store.history import CURRENT_CUSTOMERS, STG_CUSTOMERS, updated_customers
from cx_pipeline.lib.store.parquet import write_frame
from cx_pipeline.settings import SETTINGS


@dg.asset(
    name=CURRENT_CUSTOMERS,
    group_name="staging",
    op_tags=step_priority(CURRENT_CUSTOMERS),
    deps=[
        dg.AssetDep(STG_CUSTOMERS.name, partition_mapping=days_back(0)),
        own_previous_day(CURRENT_CUSTOMERS),
    ],
    partitions_def=DAILY,
    backfill_policy=ONE_RUN,
    kinds={"parquet"},
    description="The newest version of every customer known by the end of the day (the "
    "day before's snapshot plus the day's customer drop; the latest arrival wins).",
)
def int_current_customers(
    context: dg.AssetExecutionContext, paths: CxPaths
) -> Iterator[dg.MaterializeResult | dg.AssetCheckEvaluation]:
    results = DayResults(context)
    for day in partition_days(context):
        if partition_rows(paths.output, STG_CUSTOMERS.name, day) is None:
            context.log.warning(f"{day}: no staged customers (missing drop): not computed")
            results.not_written(CURRENT_CUSTOMERS, day, "no staged customers (missing drop)")
            continue
        snapshot = updated_customers(paths.output, day, SETTINGS.start_date)
        write_frame(paths.output, CURRENT_CUSTOMERS, day, snapshot, STG_CUSTOMERS.arrow_schema)
        results.counted(CURRENT_CUSTOMERS, day, len(snapshot))
    yield from results.results([CURRENT_CUSTOMERS])


STATE_ASSETS = [int_current_customers]
