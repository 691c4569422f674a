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
import pandas as pd

from cx_pipeline.defs.days import DayResults
from cx_pipeline.defs.partitions import DAILY, days_back, own_previous_day, partition_days
from cx_pipeline.defs.resources import CxPaths
from cx_pipeline.lib.metrics.core import Day
from cx_pipeline.lib.quality import events_before_creation, unknown_references
from cx_pipeline.lib.store import ticket_state
from cx_pipeline.lib.store.history import (
    CURRENT_CUSTOMERS,
    EVENT_ARRIVAL_SLACK_DAYS,
    current_customers,
)
from cx_pipeline.lib.store.parquet import read_window
from cx_pipeline.lib.store.tables import FCT_TICKETS, STAGED_TABLES, TABLES_BY_NAME
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


# Known values of a referenced column on a day.
Known = Callable[[Path, dt.date], pd.Series]


def _reference_check(
    name: str, asset: str, column: str, known: Known, among: str, deps: list[dg.AssetDep]
) -> dg.AssetChecksDefinition:
    """Warn when ``asset.column`` values of the day are not ``known`` values that day
    (``among`` says which, for the check's description)."""
    source = TABLES_BY_NAME[asset]

    def judge(output: Path, day: dt.date) -> tuple[bool, dict[str, Any]]:
        rows = read_window(output, asset, source.arrow_schema, day, day, [column])
        count, some = unknown_references(rows, column, known(output, day))
        figures = {"rows_checked": len(rows), "unknown_references": count, "examples": some[:10]}
        return count == 0, figures

    return _daily_check(name, asset, f"{asset}.{column} points at {among}.", deps)(judge)


def _staged_ticket_ids(output: Path, day: dt.date) -> pd.Series:
    spec = STAGED_TABLES["tickets"]
    start = day - dt.timedelta(days=SETTINGS.lookback_days)
    return read_window(output, spec.name, spec.arrow_schema, start, day, ["ticket_id"])["ticket_id"]


def _live_tickets(output: Path, day: dt.date, columns: list[str]) -> pd.DataFrame:
    return ticket_state.known_tickets(output, day, EVENT_ARRIVAL_SLACK_DAYS, columns)


def _customer_ids(output: Path, day: dt.date) -> pd.Series:
    snapshot = current_customers(output, Day(day, SETTINGS.reporting_timezone), columns=())
    return snapshot["customer_id"]


# Tickets live the day before (lib/store/ticket_state.py) and those that arrived since: the
# tickets an event can belong to, read without scanning the lookback's drops.
_LIVE_TICKET_DEPS = [
    dg.AssetDep("stg_tickets", partition_mapping=days_back(EVENT_ARRIVAL_SLACK_DAYS)),
    own_previous_day(FCT_TICKETS.name),
]
_SNAPSHOT_DEPS = [dg.AssetDep(CURRENT_CUSTOMERS, partition_mapping=days_back(0))]
_LIVE = "a live ticket (open, or solved within the reopen window, at the day before's end) "
_LIVE += "or one that arrived since; events of other tickets count in no metric"
_CUSTOMER = "a customer of the day's customer snapshot (int_current_customers)"

REFERENCE_CHECKS = [
    _reference_check(
        "events_reference_known_tickets", "stg_ticket_events", "ticket_id",
        lambda output, day: _live_tickets(output, day, ["ticket_id"])["ticket_id"],
        _LIVE, _LIVE_TICKET_DEPS,
    ),
    # A survey often follows a ticket's close, after which the ticket is no longer live.
    _reference_check(
        "responses_reference_known_tickets", "stg_survey_responses", "ticket_id",
        _staged_ticket_ids,
        f"a ticket staged in the {SETTINGS.lookback_days} days up to the day",
        [dg.AssetDep("stg_tickets", partition_mapping=days_back(SETTINGS.lookback_days))],
    ),
    _reference_check(
        "responses_reference_known_customers", "stg_survey_responses", "customer_id",
        _customer_ids, _CUSTOMER, _SNAPSHOT_DEPS,
    ),
    _reference_check(
        "tickets_reference_known_customers", "stg_tickets", "customer_id",
        _customer_ids, _CUSTOMER, _SNAPSHOT_DEPS,
    ),
]  # fmt: skip


def _events_before_creation(output: Path, day: dt.date) -> tuple[bool, dict[str, Any]]:
    events_spec = STAGED_TABLES["ticket_events"]
    events = read_window(output, events_spec.name, events_spec.arrow_schema, day, day)
    # The newest version of each ticket: rows that arrived later come later.
    tickets = _live_tickets(output, day, ["ticket_id", "created_at"])
    found = events_before_creation(events, tickets.drop_duplicates("ticket_id", keep="last"))
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
    _LIVE_TICKET_DEPS,
)(_events_before_creation)


REFERENCE_CHECKS = [*REFERENCE_CHECKS, events_not_before_ticket_creation]
ASSET_CHECKS = REFERENCE_CHECKS
