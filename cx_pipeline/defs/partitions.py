"""The daily partitions every asset shares, and how marts reach back into history."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from cx_pipeline.settings import SETTINGS

DAILY = dg.DailyPartitionsDefinition(
    start_date=SETTINGS.start_date.isoformat(), timezone=SETTINGS.reporting_timezone
)
# A whole backfill range runs as one run (so `dagster asset materialize
# --partition-range` works); each asset walks its days in order, one at a time.
ONE_RUN = dg.BackfillPolicy.single_run()
# Run tags that make one run cover a range of days (what the CLI's --partition-range sets).
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def days_back(days: int, late_days: int = 0) -> dg.TimeWindowPartitionMapping:
    """Depend on the same day of the upstream asset and the ``days`` before it, and on the
    ``late_days`` after it whose drops may hold late rows of the day (those that do not
    exist yet are no dependency)."""
    return dg.TimeWindowPartitionMapping(
        start_offset=-days, end_offset=late_days, allow_nonexistent_upstream_partitions=True
    )


def own_previous_day(asset: str) -> dg.AssetDep:
    """Depend on the day before of ``asset`` (a snapshot carried from day to day); on the
    first day there is none."""
    return dg.AssetDep(
        asset,
        partition_mapping=dg.TimeWindowPartitionMapping(
            start_offset=-1, end_offset=-1, allow_nonexistent_upstream_partitions=True
        ),
    )


def partition_days(context: dg.AssetExecutionContext) -> list[dt.date]:
    """The run's days, oldest first (one for a daily run, many for a backfill)."""
    return sorted(dt.date.fromisoformat(key) for key in context.partition_keys)
