"""Raw assets: each day's drop of a source, read losslessly (all text) into Parquet.

Partitioned by arrival day: rerunning a raw partition rereads exactly one drop.
The landing files themselves are only ever read, never changed or moved.
"""

import datetime as dt
from collections.abc import Iterator

import dagster as dg

from cx_pipeline.defs.days import DayResults
from cx_pipeline.defs.partitions import DAILY, ONE_RUN, partition_days
from cx_pipeline.defs.pulls import PULLED_SOURCES
from cx_pipeline.defs.resources import CxPaths, StagingPolicy
from cx_pipeline.defs.schedules import step_priority
from cx_pipeline.lib.ingest.drops import DROP_SUFFIXES, find_drop, read_drop
from cx_pipeline.lib.ingest.sources import SOURCES, Source
from cx_pipeline.lib.store.parquet import partition_path, write_partition

SOURCE_FILE_KEY = b"cx_source_file"


class MissingDropError(dg.Failure):
    pass


def build_raw_asset(source: Source) -> dg.AssetsDefinition:
    @dg.asset(
        name=source.raw_table,
        group_name="raw",
        op_tags=step_priority(source.raw_table),
        # A SQL source pulled by the pipeline lands its drop first (defs/pulls.py).
        deps=PULLED_SOURCES.get(source.name, []),
        partitions_def=DAILY,
        backfill_policy=ONE_RUN,
        kinds={"parquet"},
        # A daily drop: stale after a day and a bit, failing after two.
        freshness_policy=dg.FreshnessPolicy.time_window(
            fail_window=dt.timedelta(hours=50), warn_window=dt.timedelta(hours=26)
        ),
        description=(
            f"The day's `{source.name}` drop (`<landing>/{source.name}/<YYYY-MM-DD>.csv|jsonl|"
            "parquet`) as text, one row per file row, with its row number."
        ),
    )
    def raw_asset(
        context: dg.AssetExecutionContext, paths: CxPaths, policy: StagingPolicy
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckEvaluation]:
        results = DayResults(context)
        for day in partition_days(context):
            drop = find_drop(paths.landing, source.name, day)
            if drop is None:
                where = f"{paths.landing / source.name / day.isoformat()}{'|'.join(DROP_SUFFIXES)}"
                if policy.missing_drops != "skip":
                    raise MissingDropError(
                        description=f"missing drop: no {source.name} file for {day} "
                        f"(looked for {where}). The day is not processed as a day without "
                        "rows. Land the file and rerun the day, or set CX_MISSING_DROPS=skip "
                        "to skip missing days in a backfill."
                    )
                # Skipped: remove a stale copy so staging sees the day as missing too.
                partition_path(paths.output, source.raw_table, day).unlink(missing_ok=True)
                results.not_written(source.raw_table, day, "no drop (missing): skipped")
                context.log.warning(f"missing drop: no {source.name} file for {day}; skipped")
                continue
            table = read_drop(drop, policy.encoding)
            table = table.replace_schema_metadata({SOURCE_FILE_KEY: str(drop).encode()})
            write_partition(paths.output, source.raw_table, day, table)
            results.counted(source.raw_table, day, table.num_rows, file=str(drop))
        yield from results.results([source.raw_table])

    return raw_asset


RAW_ASSETS = [build_raw_asset(source) for source in SOURCES]
