"""Staging assets: typed, validated, de-duplicated rows of each drop (``stg_<source>``).

Rows that break a rule go to ``stg_rejects`` with the file, row number, rule
and raw row, never silently away. A drop with more rejects than the source's
threshold fails the run (its rejects are still written, for inspection, and the
day's previous staged rows stay as they were).
"""

import dagster as dg

from cx_pipeline.defs.metadata import run_summary, table_definition_metadata
from cx_pipeline.defs.partitions import DAILY, ONE_RUN, partition_days
from cx_pipeline.defs.raw import SOURCE_FILE_KEY
from cx_pipeline.defs.resources import CxPaths, StagingPolicy, WarehouseResource
from cx_pipeline.lib.ingest.sources import SOURCES, Source
from cx_pipeline.lib.ingest.staging import StagedDrop, stage_drop
from cx_pipeline.lib.quality import commonest_rule, volume_check
from cx_pipeline.lib.store.parquet import read_partition_table
from cx_pipeline.lib.store.publish import publish
from cx_pipeline.lib.store.tables import STAGED_TABLES, STG_REJECTS

MAX_REJECTS_LOGGED = 5
VOLUME_CHECK = "row_count_vs_trailing_mean"
SCHEMA_CHECK = "schema_valid"
REJECTS_CHECK = "reject_share_within_threshold"


class TooManyRejectsError(dg.Failure):
    pass


def volume_check_spec(asset: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        VOLUME_CHECK,
        asset=asset,
        description="Warns when a day's rows fall outside 0.25x-4x the mean of the 7 days before.",
    )


def schema_check_spec(asset: str, model: str) -> dg.AssetCheckSpec:
    # Enforced when each day is written (publish validates first), so a frame that
    # breaks it fails the asset; blocking keeps downstream assets from running on it.
    return dg.AssetCheckSpec(
        SCHEMA_CHECK,
        asset=asset,
        blocking=True,
        description=f"Every day written validates against pandera model {model} "
        "(types, required values, allowed values and ranges, natural key).",
    )


def schema_check_result(asset: str, days: int, rows: int) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=SCHEMA_CHECK,
        asset_key=asset,
        passed=True,
        metadata={"days_validated": days, "rows_validated": rows},
    )


def volume_check_result(checks: list, asset: str) -> dg.AssetCheckResult:
    """One result for the run's days: passes when every day is within the band."""
    odd = [check.describe() for check in checks if not check.ok]
    return dg.AssetCheckResult(
        check_name=VOLUME_CHECK,
        asset_key=asset,
        passed=not odd,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"days_checked": len(checks), "days_out_of_band": odd[:20]},
    )


def fail_above_threshold(staged: StagedDrop, file: str, source: str, threshold: float) -> None:
    """Fail the asset when too many of a drop's rows were rejected (they are kept)."""
    if staged.reject_share <= threshold:
        return
    raise TooManyRejectsError(
        description=(
            f"{file}: {len(staged.rejects)} of {staged.rows_read} rows rejected "
            f"({staged.reject_share:.1%}, threshold {threshold:.1%} for {source}); "
            f"commonest rule: {commonest_rule(staged.rejects)}; "
            f"example: {staged.rejects['message'].iloc[0]}. The rejected rows are "
            "in stg_rejects; the day's staged rows were left as they were."
        )
    )


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
        check_specs=[
            volume_check_spec(spec.name),
            schema_check_spec(spec.name, spec.model.__name__),
            dg.AssetCheckSpec(
                REJECTS_CHECK,
                asset=spec.name,
                blocking=True,
                description="Rejected rows stay below the source's share (CX_REJECT_THRESHOLD); "
                "above it the asset fails with the file, commonest rule and an example row.",
            ),
        ],
    )
    def staging_asset(
        context: dg.AssetExecutionContext,
        paths: CxPaths,
        warehouse: WarehouseResource,
        policy: StagingPolicy,
    ) -> dg.MaterializeResult:
        target = warehouse.connect()
        threshold = policy.threshold_for(source.name)
        rows_by_day, rejects, duplicates, skipped, volumes = {}, 0, 0, [], []
        swallowed = 0
        with target.session():  # one connection for the step, a transaction a day
            for day in partition_days(context):
                raw = read_partition_table(paths.output, source.raw_table, day)
                if raw is None:
                    skipped.append(day.isoformat())
                    context.log.warning(f"no raw {source.name} for {day} (missing drop): skipped")
                    continue
                file = (raw.schema.metadata or {}).get(SOURCE_FILE_KEY, b"?").decode()
                staged = stage_drop(
                    raw.to_pandas(),
                    source,
                    file,
                    policy.naive_timezone,
                    policy.plausible_times(day),
                )
                if staged.extra_columns:
                    context.log.warning(f"{file}: ignored extra column(s) {staged.extra_columns}")
                for message in staged.rejects["message"].head(MAX_REJECTS_LOGGED):
                    context.log.warning(f"rejected: {message}")
                slice_of = {"source": source.name}
                publish(STG_REJECTS, day, staged.rejects, paths.output, target, slice_of)
                fail_above_threshold(staged, file, source.name, threshold)
                # stage_drop validated every row against the model and kept the valid ones.
                publish(spec, day, staged.rows, paths.output, target, validated=True)
                volumes.append(volume_check(paths.output, spec.name, day, len(staged.rows)))
                rows_by_day[day] = len(staged.rows)
                rejects += len(staged.rejects)
                duplicates += staged.duplicates_removed
                swallowed += staged.lines_swallowed
                if staged.lines_swallowed:
                    context.log.warning(
                        f"{file}: {staged.lines_swallowed} line(s) swallowed by malformed "
                        "rows (an unclosed quote?): counted as rejected rows"
                    )
        return dg.MaterializeResult(
            metadata=run_summary(
                rows_by_day,
                rejected_rows=rejects,
                duplicates_removed=duplicates,
                lines_swallowed_by_malformed_rows=swallowed,
                days_missing=skipped,
            ),
            check_results=[
                volume_check_result(volumes, spec.name),
                schema_check_result(spec.name, len(rows_by_day), sum(rows_by_day.values())),
                dg.AssetCheckResult(
                    check_name=REJECTS_CHECK,
                    asset_key=spec.name,
                    passed=True,
                    metadata={"threshold": threshold, "rejected_rows": rejects},
                ),
            ],
        )

    return staging_asset


STAGING_ASSETS = [build_staging_asset(source) for source in SOURCES]
