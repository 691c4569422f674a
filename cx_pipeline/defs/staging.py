"""Staging assets: typed, validated, de-duplicated rows of each drop (``stg_<source>``).

Rows that break a rule go to ``stg_rejects`` with the file, row number, rule
and raw row, never silently away.
"""

import dagster as dg

from cx_pipeline.defs.metadata import run_summary, table_definition_metadata
from cx_pipeline.defs.partitions import DAILY, ONE_RUN, partition_days
from cx_pipeline.defs.raw import SOURCE_FILE_KEY
from cx_pipeline.defs.resources import CxPaths, WarehouseResource
from cx_pipeline.lib.publish import publish
from cx_pipeline.lib.sources import SOURCES, Source
from cx_pipeline.lib.staging import stage_drop
from cx_pipeline.lib.storage import read_partition_table
from cx_pipeline.lib.tables import STAGED_TABLES, STG_REJECTS

MAX_REJECTS_LOGGED = 5


def build_staging_asset(source: Source) -> dg.AssetsDefinition:
    spec = STAGED_TABLES[source.name]

    @dg.asset(
        name=spec.name,
        group_name="staging",
        deps=[source.raw_table],
        partitions_def=DAILY,
        backfill_policy=ONE_RUN,
        kinds={"pandas", "parquet"},
        description=spec.description,
        metadata=table_definition_metadata(spec),
    )
    def staging_asset(
        context: dg.AssetExecutionContext, paths: CxPaths, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        target = warehouse.connect()
        rows_by_day, rejects, duplicates, skipped = {}, 0, 0, []
        for day in partition_days(context):
            raw = read_partition_table(paths.output, source.raw_table, day)
            if raw is None:
                skipped.append(day.isoformat())
                continue
            file = (raw.schema.metadata or {}).get(SOURCE_FILE_KEY, b"?").decode()
            staged = stage_drop(raw.to_pandas(), source, file)
            publish(spec, day, staged.rows, paths.output, target)
            publish(STG_REJECTS, day, staged.rejects, paths.output, target, {"source": source.name})
            for message in staged.rejects["message"].head(MAX_REJECTS_LOGGED):
                context.log.warning(f"rejected: {message}")
            rows_by_day[day] = len(staged.rows)
            rejects += len(staged.rejects)
            duplicates += staged.duplicates_removed
        return dg.MaterializeResult(
            metadata=run_summary(
                rows_by_day,
                rejected_rows=rejects,
                duplicates_removed=duplicates,
                days_without_raw=skipped,
            )
        )

    return staging_asset


STAGING_ASSETS = [build_staging_asset(source) for source in SOURCES]
