"""Asset checks that look across tables: referential integrity and freshness.

Row counts against the trailing mean are reported by every staging and mart
asset itself (check ``row_count_vs_trailing_mean``); schema, null and range
rules are enforced by the pandera models when a table is written, so a
breaking frame fails its asset and never reaches downstream tables.
"""

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg

from cx_pipeline.defs.days import DayResults
from cx_pipeline.defs.partitions import ALL_EARLIER_DAYS, DAILY, days_back, partition_days
from cx_pipeline.defs.resources import CxPaths
from cx_pipeline.lib.quality import events_before_creation, unknown_references
from cx_pipeline.lib.store.parquet import read_window
from cx_pipeline.lib.store.tables import STAGED_TABLES, TABLES_BY_NAME
from cx_pipeline.settings import SETTINGS

# A day's judgement: (passed, the figures shown with the result).
DayCheck = Callable[[Path, dt.date], tuple[bool, dict[str, Any]]]


def _daily_check(
    name: str, asset: str, description: str, deps: list[dg.AssetDep]
) -> Callable[[DayCheck], dg.AssetChecksDefinition]:
    """A check of ``asset`` judged day by day: ``judge(paths, day)`` gives the day's
    (passed, figures); each result is reported on its day (defs/days.py)."""

    def build(judge: DayCheck) -> dg.AssetChecksDefinition:
        @dg.multi_asset_check(
            name=name,
            specs=[
                dg.AssetCheckSpec(
                    name, asset=asset, description=description, additional_deps=deps,
                    partitions_def=DAILY,
                )
            ],
            can_subset=True,  # results per day instead of one per run
        )  # fmt: skip
        def daily_check(
            context: dg.AssetCheckExecutionContext, paths: CxPaths
        ) -> Iterator[dg.MaterializeResult | dg.AssetCheckEvaluation]:
            results = DayResults(context)
            for day in partition_days(context):  # type: ignore[arg-type]
                passed, figures = judge(paths.output, day)
                results.checked(asset, name, day, passed, figures, dg.AssetCheckSeverity.WARN)
            yield from results.results([])

        return daily_check

    return build


def _reference_check(
    name: str, asset: str, column: str, target: str, target_column: str, lookback: int
) -> dg.AssetChecksDefinition:
    """Warn when ``asset.column`` values of the day are not ``target.target_column``
    values staged within ``lookback`` days (e.g. events of an unknown ticket)."""
    source, referenced = TABLES_BY_NAME[asset], TABLES_BY_NAME[target]

    def judge(output: Path, day: dt.date) -> tuple[bool, dict[str, Any]]:
        rows = read_window(output, asset, source.arrow_schema, day, day, [column])
        known = read_window(
            output, target, referenced.arrow_schema, day - dt.timedelta(days=lookback), day,
            [target_column],
        )[target_column]  # fmt: skip
        count, some = unknown_references(rows, column, known)
        figures = {"rows_checked": len(rows), "unknown_references": count, "examples": some[:10]}
        return count == 0, figures

    return _daily_check(
        name,
        asset,
        f"{asset}.{column} points at a known {target}.{target_column} "
        f"(staged in the {lookback} days up to the day).",
        [dg.AssetDep(target, partition_mapping=days_back(lookback))],
    )(judge)


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


def _events_before_creation(output: Path, day: dt.date) -> tuple[bool, dict[str, Any]]:
    events_spec, tickets_spec = STAGED_TABLES["ticket_events"], STAGED_TABLES["tickets"]
    events = read_window(output, events_spec.name, events_spec.arrow_schema, day, day)
    tickets = read_window(
        output, tickets_spec.name, tickets_spec.arrow_schema,
        day - dt.timedelta(days=SETTINGS.lookback_days), day, ["ticket_id", "created_at"],
    ).drop_duplicates("ticket_id", keep="last")  # fmt: skip
    found = events_before_creation(events, tickets)
    examples = [
        f"{row.ticket_id} {row.event_type} at {row.event_at} < created {row.created_at}"
        for row in found.head(10).itertuples()
    ]
    return found.empty, {"events_before_creation": len(found), "examples": examples}


events_not_before_ticket_creation = _daily_check(
    "events_not_before_ticket_creation",
    "stg_ticket_events",
    "No event happens before its ticket was created (a reply or solve before creation is "
    "kept in staging but left out of every duration).",
    [dg.AssetDep("stg_tickets", partition_mapping=days_back(SETTINGS.lookback_days))],
)(_events_before_creation)


REFERENCE_CHECKS = [*REFERENCE_CHECKS, events_not_before_ticket_creation]
ASSET_CHECKS = REFERENCE_CHECKS
