"""Asset checks that look across tables: referential integrity and freshness.

Row counts against the trailing mean are reported by every staging and mart
asset itself (check ``row_count_vs_trailing_mean``); schema, null and range
rules are enforced by the pandera models when a table is written, so a
breaking frame fails its asset and never reaches downstream tables.
"""

import datetime as dt

import dagster as dg

from cx_pipeline.defs.partitions import ALL_EARLIER_DAYS, DAILY, days_back, partition_days
from cx_pipeline.defs.resources import CxPaths
from cx_pipeline.lib.quality import events_before_creation, unknown_references
from cx_pipeline.lib.store.parquet import read_window
from cx_pipeline.lib.store.tables import STAGED_TABLES, TABLES_BY_NAME
from cx_pipeline.settings import SETTINGS


def _reference_check(
    name: str, asset: str, column: str, target: str, target_column: str, lookback: int
) -> dg.AssetChecksDefinition:
    """Warn when ``asset.column`` values of the day are not ``target.target_column``
    values staged within ``lookback`` days (e.g. events of an unknown ticket)."""

    @dg.asset_check(
        asset=asset,
        name=name,
        description=f"{asset}.{column} points at a known {target}.{target_column} "
        f"(staged in the {lookback} days up to the day).",
        additional_deps=[dg.AssetDep(target, partition_mapping=days_back(lookback))],
        partitions_def=DAILY,
        blocking=False,
    )
    def reference_check(
        context: dg.AssetCheckExecutionContext, paths: CxPaths
    ) -> dg.AssetCheckResult:
        unknown_total, examples, checked = 0, [], 0
        source, referenced = TABLES_BY_NAME[asset], TABLES_BY_NAME[target]
        for day in partition_days(context):  # type: ignore[arg-type]
            rows = read_window(paths.output, asset, source.arrow_schema, day, day, [column])
            known = read_window(
                paths.output,
                target,
                referenced.arrow_schema,
                day - dt.timedelta(days=lookback),
                day,
                [target_column],
            )[target_column]
            count, some = unknown_references(rows, column, known)
            unknown_total, checked = unknown_total + count, checked + len(rows)
            examples += [f"{day}: {value}" for value in some]
        return dg.AssetCheckResult(
            passed=unknown_total == 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "rows_checked": checked,
                "unknown_references": unknown_total,
                "examples": examples[:10],
            },
        )

    return reference_check


REFERENCE_CHECKS = [
    _reference_check(
        "events_reference_known_tickets",
        "stg_ticket_events",
        "ticket_id",
        "stg_tickets",
        "ticket_id",
        SETTINGS.lookback_days,
    ),
    _reference_check(
        "responses_reference_known_tickets",
        "stg_survey_responses",
        "ticket_id",
        "stg_tickets",
        "ticket_id",
        SETTINGS.lookback_days,
    ),
    _reference_check(
        "responses_reference_known_customers",
        "stg_survey_responses",
        "customer_id",
        "stg_customers",
        "customer_id",
        ALL_EARLIER_DAYS,
    ),
    _reference_check(
        "tickets_reference_known_customers",
        "stg_tickets",
        "customer_id",
        "stg_customers",
        "customer_id",
        ALL_EARLIER_DAYS,
    ),
]


@dg.asset_check(
    asset="stg_ticket_events",
    description="No event happens before its ticket was created (a reply or solve "
    "before creation is kept in staging but left out of every duration).",
    additional_deps=[
        dg.AssetDep("stg_tickets", partition_mapping=days_back(SETTINGS.lookback_days))
    ],
    partitions_def=DAILY,
    blocking=False,
)
def events_not_before_ticket_creation(
    context: dg.AssetCheckExecutionContext, paths: CxPaths
) -> dg.AssetCheckResult:
    events_spec, tickets_spec = STAGED_TABLES["ticket_events"], STAGED_TABLES["tickets"]
    early, examples = 0, []
    for day in partition_days(context):  # type: ignore[arg-type]
        events = read_window(paths.output, events_spec.name, events_spec.arrow_schema, day, day)
        tickets = read_window(
            paths.output,
            tickets_spec.name,
            tickets_spec.arrow_schema,
            day - dt.timedelta(days=SETTINGS.lookback_days),
            day,
            ["ticket_id", "created_at"],
        ).drop_duplicates("ticket_id", keep="last")
        found = events_before_creation(events, tickets)
        early += len(found)
        examples += [
            f"{row.ticket_id} {row.event_type} at {row.event_at} < created {row.created_at}"
            for row in found.head(5).itertuples()
        ]
    return dg.AssetCheckResult(
        passed=early == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"events_before_creation": early, "examples": examples[:10]},
    )


REFERENCE_CHECKS = [*REFERENCE_CHECKS, events_not_before_ticket_creation]
ASSET_CHECKS = REFERENCE_CHECKS
