"""Staging assets: typed, validated, de-duplicated rows of each drop (``stg_<source>``).

Rows that break a rule go to ``stg_rejects`` with the file, row number, rule
and raw row, never silently away. A drop with more rejects than the source's
threshold fails its day's reject check, and the step then fails, so nothing downstream
runs on it: its rejects are still written, for inspection, and the day's previous staged
rows stay as they were.
"""

from collections.abc import Iterator

import dagster as dg

from cx_pipeline.defs.days import DayResults, table_check_specs
from cx_pipeline.defs.metadata import table_definition_metadata
from cx_pipeline.defs.partitions import DAILY, ONE_RUN, partition_days
from cx_pipeline.defs.raw import SOURCE_FILE_KEY
from cx_pipeline.defs.resources import CxPaths, StagingPolicy, WarehouseResource
from cx_pipeline.defs.schedules import step_priority
from cx_pipeline.lib.ingest.sources import SOURCES, Source
from cx_pipeline.lib.ingest.staging import StagedDrop, stage_drop
from cx_pipeline.lib.quality import commonest_rule
from cx_pipeline.lib.store.parquet import read_partition_table
from cx_pipeline.lib.store.publish import PublishBatch
from cx_pipeline.lib.store.tables import STAGED_TABLES, STG_REJECTS

MAX_REJECTS_LOGGED = 5
REJECTS_CHECK = "reject_share_within_threshold"


def too_many_rejects(staged: StagedDrop, file: str, source: str, threshold: float) -> str:
    """What a data engineer needs to know about a drop over its reject threshold."""
    return (
        f"{file}: {len(staged.rejects)} of {staged.rows_read} rows rejected "
        f"({staged.reject_share:.1%}, threshold {threshold:.1%} for {source}); "
        f"commonest rule: {commonest_rule(staged.rejects)}; "
        f"example: {staged.rejects['message'].iloc[0]}. The rejected rows are "
        "in stg_rejects; the day's staged rows were left as they were."
    )


def build_staging_asset(source: Source) -> dg.AssetsDefinition:
    spec = STAGED_TABLES[source.name]

    @dg.multi_asset(
        name=spec.name,
        op_tags=step_priority(spec.name),
        specs=[
            dg.AssetSpec(
                spec.name,
                group_name="staging",
                deps=[source.raw_table],
                partitions_def=DAILY,
                kinds={"pandas", "parquet"},
                description=spec.description,
                metadata=table_definition_metadata(spec),
            )
        ],
        partitions_def=DAILY,
        backfill_policy=ONE_RUN,
        # Lets the checks report per day (days.py) instead of once per run.
        can_subset=True,
        check_specs=[
            *table_check_specs(spec.name, spec.model.__name__),
            dg.AssetCheckSpec(
                REJECTS_CHECK,
                asset=spec.name,
                partitions_def=DAILY,
                description="Rejected rows stay below the source's share (CX_REJECT_THRESHOLD); "
                "above it the day's check fails with the file, commonest rule and an example "
                "row, and nothing downstream runs.",
            ),
        ],
    )
    def staging_asset(
        context: dg.AssetExecutionContext,
        paths: CxPaths,
        warehouse: WarehouseResource,
        policy: StagingPolicy,
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckEvaluation]:
        target = warehouse.connect()
        threshold = policy.threshold_for(source.name)
        results = DayResults(context)
        # The run's days go out in batches (lib/store/publish.py), each day's rejects first.
        batch = PublishBatch(paths.output, target)
        with target.session():  # one connection for the step (Warehouse.session)
            for day in partition_days(context):
                raw = read_partition_table(paths.output, source.raw_table, day)
                if raw is None:
                    context.log.warning(f"no raw {source.name} for {day} (missing drop): skipped")
                    results.not_written(spec.name, day, "no drop (missing): skipped")
                    continue
                file = (raw.schema.metadata or {}).get(SOURCE_FILE_KEY, b"?").decode()
                staged = stage_drop(
                    raw.to_pandas(), source, file, policy.naive_timezone,
                    policy.plausible_times(day),
                )  # fmt: skip
                if staged.extra_columns:
                    context.log.warning(f"{file}: ignored extra column(s) {staged.extra_columns}")
                for message in staged.rejects["message"].head(MAX_REJECTS_LOGGED):
                    context.log.warning(f"rejected: {message}")
                if staged.lines_swallowed:
                    context.log.warning(
                        f"{file}: {staged.lines_swallowed} line(s) swallowed by malformed "
                        "rows (an unclosed quote?): counted as rejected rows"
                    )
                slice_of = {"source": source.name}
                batch.add(STG_REJECTS, day, staged.rejects, slice_of)
                figures = {
                    "rows_read": staged.rows_read,
                    "rejected_rows": len(staged.rejects),
                    "reject_share": round(staged.reject_share, 4),
                    "threshold": threshold,
                }
                within = staged.reject_share <= threshold
                results.checked(
                    spec.name, REJECTS_CHECK, day, within, figures,
                    description=None if within else too_many_rejects(
                        staged, file, source.name, threshold
                    ),
                )  # fmt: skip
                if not within:
                    results.not_written(spec.name, day, "too many rejects: previous rows kept")
                    continue
                # stage_drop validated every row against the model and kept the valid ones.
                batch.add(spec, day, staged.rows, validated=True)
                results.table_written(
                    paths.output, spec.name, day, staged.rows,
                    rejected_rows=len(staged.rejects),
                    duplicates_removed=staged.duplicates_removed,
                    lines_swallowed_by_malformed_rows=staged.lines_swallowed,
                )  # fmt: skip
            batch.flush()
        yield from results.results([spec.name])

    return staging_asset


STAGING_ASSETS = [build_staging_asset(source) for source in SOURCES]
