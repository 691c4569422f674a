"""Asset checks that look across tables: referential integrity and freshness.

Row counts against the trailing mean are reported by every staging and mart
asset itself (check ``row_count_vs_trailing_mean``); schema, null and range
rules are enforced by the pandera models when a table is written, so a
breaking frame fails its asset and never reaches downstream tables.
"""

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from cx_pipeline.defs.days import DayResults
from cx_pipeline.defs.partitions import DAILY, days_back, partition_days
from cx_pipeline.defs.resources import CxPaths
from cx_pipeline.lib.metrics.core import Day
from cx_pipeline.lib.quality import events_before_creation, unknown_references
from cx_pipeline.lib.store import ticket_state
from cx_pipeline.lib.store.history import CURRENT_CUSTOMERS, current_customers
from cx_pipeline.lib.store.parquet import read_window
from cx_pipeline.lib.store.tables import FCT_TICKETS, STAGED_TABLES, TABLES_BY_NAME
from cx_pipeline.settings import SETTINGS

# A day's judgements: each check's (passed, the figures shown with its result).
DayChecks = Callable[[Path, dt.date], dict[str, tuple[bool, dict[str, Any]]]]


def _daily_checks(
    name: str, asset: str, descriptions: dict[str, str], deps: list[dg.AssetDep]
) -> Callable[[DayChecks], dg.AssetChecksDefinition]:
    """Checks of ``asset`` (name: description) judged together day by day, so what they
    share is read once a day: ``judge(paths, day)`` gives each check's (passed, figures)
    on the day, reported on that day (defs/days.py)."""

    def build(judge: DayChecks) -> dg.AssetChecksDefinition:
        @dg.multi_asset_check(
            name=name,
            specs=[
                dg.AssetCheckSpec(
                    check, asset=asset, description=description, additional_deps=deps,
                    partitions_def=DAILY,
                )
                for check, description in descriptions.items()
            ],
            can_subset=True,  # results per day instead of one per run
        )  # fmt: skip
        def daily_checks(
            context: dg.AssetCheckExecutionContext, paths: CxPaths
        ) -> Iterator[dg.MaterializeResult | dg.AssetCheckEvaluation]:
            selected = {key.name for key in context.selected_asset_check_keys}
            results = DayResults(context)
            for day in partition_days(context):  # type: ignore[arg-type]
                for check, (passed, figures) in judge(paths.output, day).items():
                    if check in selected:
                        results.checked(
                            asset, check, day, passed, figures, dg.AssetCheckSeverity.WARN
                        )
            yield from results.results([])

        return daily_checks

    return build


@dataclass(frozen=True)
class Reference:
    """What a column may point at: its values known on a day, described for the check."""

    known: Callable[[Path, dt.date], pd.Series]
    among: str
    deps: list[dg.AssetDep]


def _references_judged(
    rows: pd.DataFrame, column: str, known: pd.Series
) -> tuple[bool, dict[str, Any]]:
    count, some = unknown_references(rows, column, known)
    figures = {"rows_checked": len(rows), "unknown_references": count, "examples": some[:10]}
    return count == 0, figures


def _reference_description(asset: str, column: str, among: str) -> str:
    return f"{asset}.{column} points at {among}."


def _reference_check(
    name: str, asset: str, column: str, target: Reference
) -> dg.AssetChecksDefinition:
    """Warn when ``asset.column`` values of the day are not among the ``target``'s."""
    source = TABLES_BY_NAME[asset]

    def judge(output: Path, day: dt.date) -> dict[str, tuple[bool, dict[str, Any]]]:
        rows = read_window(output, asset, source.arrow_schema, day, day, [column])
        return {name: _references_judged(rows, column, target.known(output, day))}

    description = _reference_description(asset, column, target.among)
    return _daily_checks(name, asset, {name: description}, target.deps)(judge)


def _tickets_mart_days(left_days: int) -> list[dg.AssetDep]:
    """The days of the tickets mart whose carried state has the tickets live at a day's end
    or that left it in the ``left_days`` up to it (lib/store/ticket_state.py)."""
    return [dg.AssetDep(FCT_TICKETS.name, partition_mapping=days_back(left_days))]


def _ticket_reference(left_days: int, among: str) -> Reference:
    def known(output: Path, day: dt.date) -> pd.Series:
        return ticket_state.tickets_known_on(output, day, left_days, ["ticket_id"])["ticket_id"]

    return Reference(known, among, _tickets_mart_days(left_days))


def _customer_ids(output: Path, day: dt.date) -> pd.Series:
    snapshot = current_customers(output, Day(day, SETTINGS.reporting_timezone), columns=())
    return snapshot["customer_id"]


AFTER_CLOSE = SETTINGS.survey_after_close_days
# Looked up in carried state, never in the lookback's drops: the live tickets (and those
# that left lately) and the day's customer snapshot.
SURVEYED_TICKET = _ticket_reference(
    AFTER_CLOSE,
    f"a ticket live that day or closed at most {AFTER_CLOSE} days before "
    "(CX_SURVEY_AFTER_CLOSE_DAYS)",
)
CUSTOMER = Reference(
    _customer_ids,
    "a customer of the day's customer snapshot (int_current_customers)",
    [dg.AssetDep(CURRENT_CUSTOMERS, partition_mapping=days_back(0))],
)

EVENTS = STAGED_TABLES["ticket_events"].name
EVENTS_KNOWN, EVENTS_AFTER_CREATION = (
    "events_reference_known_tickets",
    "events_not_before_ticket_creation",
)


def _judge_events(output: Path, day: dt.date) -> dict[str, tuple[bool, dict[str, Any]]]:
    """Both checks of the day's events from one read of them and of the live tickets (each
    read is about a second a day at a million tickets a day)."""
    events = read_window(
        output, EVENTS, TABLES_BY_NAME[EVENTS].arrow_schema, day, day,
        ["ticket_id", "event_type", "event_at"],
    )  # fmt: skip
    tickets = ticket_state.tickets_known_on(output, day, 0, ["ticket_id", "created_at"])
    early = events_before_creation(events, tickets)
    examples = [
        f"{row.ticket_id} {row.event_type} at {row.event_at} < created {row.created_at}"
        for row in early.head(10).itertuples()
    ]
    return {
        EVENTS_KNOWN: _references_judged(events, "ticket_id", tickets["ticket_id"]),
        EVENTS_AFTER_CREATION: (
            early.empty,
            {"events_before_creation": len(early), "examples": examples},
        ),
    }


ticket_events_checks = _daily_checks(
    "ticket_events_checks",
    EVENTS,
    {
        EVENTS_KNOWN: _reference_description(
            EVENTS, "ticket_id",
            "a ticket live that day (not closed before it); events of other tickets count in "
            "no metric",
        ),
        EVENTS_AFTER_CREATION: "No event happens before its ticket was created (a reply or "
        "solve before creation is kept in staging but left out of every duration).",
    },
    _tickets_mart_days(0),
)(_judge_events)  # fmt: skip

REFERENCE_CHECKS = [
    ticket_events_checks,
    _reference_check(
        "responses_reference_known_tickets", "stg_survey_responses", "ticket_id", SURVEYED_TICKET
    ),
    _reference_check(
        "responses_reference_known_customers", "stg_survey_responses", "customer_id", CUSTOMER
    ),
    _reference_check("tickets_reference_known_customers", "stg_tickets", "customer_id", CUSTOMER),
]
ASSET_CHECKS = REFERENCE_CHECKS
