"""Reading the staged history a mart day needs, bounded by a window of arrival days.

Marts never read all of history at once: each loader names the arrival days
it needs (the partition filter prunes folders), the columns (projection) and,
where it can, the rows (a pushed-down filter on ticket ids).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from cx_pipeline.lib.frames import to_frame
from cx_pipeline.lib.ingest.sources import TICKET_EVENTS as TICKET_EVENTS_SOURCE
from cx_pipeline.lib.metrics import core
from cx_pipeline.lib.metrics.core import Day
from cx_pipeline.lib.store import tables, ticket_state
from cx_pipeline.lib.store.parquet import latest_partition_before, read_window
from cx_pipeline.lib.store.tables import STAGED_TABLES

STG_CUSTOMERS = STAGED_TABLES["customers"]
# Events are read from the drop of their own day and of the day before, so a
# drop cut in a different time zone than the reporting one still counts.
EVENT_ARRIVAL_SLACK_DAYS = 1


def _on_day(column: str, day: Day) -> ds.Expression:
    """Rows whose ``column`` instant falls within ``day`` (a pushed-down filter)."""
    return (ds.field(column) >= day.start) & (ds.field(column) < day.end)


def _late(
    output: Path,
    spec_name: str,
    day: Day,
    late_days: int,
    instant: str,
    columns: list[str] | None = None,
    row_filter: ds.Expression | None = None,
) -> pd.DataFrame:
    """Rows of the ``late_days`` drops after ``day`` whose ``instant`` is before its end:
    the day's late rows (read when the day is rerun after they landed, to restate it)."""
    return _read(
        output,
        spec_name,
        day.date + dt.timedelta(days=1),
        day.date + dt.timedelta(days=late_days),  # before the start when late_days is 0
        columns=columns,
        row_filter=row_filter,
        before=(instant, day.end),
    )


def _read(output: Path, spec_name: str, start: dt.date, end: dt.date, **kwargs) -> pd.DataFrame:
    spec = STAGED_TABLES[spec_name]
    return read_window(output, spec.name, spec.arrow_schema, start, end, **kwargs)


def tickets_created_recently(
    output: Path,
    day: Day,
    days: int,
    columns: tuple[str, ...] = ("created_at", "topic"),
    late_days: int = 0,
) -> pd.DataFrame:
    """Newest version of the tickets that arrived in the ``days`` before ``day`` and on it,
    and of those created by its end that arrived in the ``late_days`` drops after it."""
    recent = _read(
        output,
        "tickets",
        day.date - dt.timedelta(days=days),
        day.date,
        columns=["ticket_id", *columns],
    )
    late = _late(output, "tickets", day, late_days, "created_at", ["ticket_id", *columns])
    tickets = pd.concat([recent, late], ignore_index=True) if len(late) else recent
    return core.latest_versions(tickets, ["ticket_id"])


CURRENT_CUSTOMERS = "int_current_customers"


def updated_customers(output: Path, day: dt.date, first_day: dt.date) -> pd.DataFrame:
    """Newest version of every customer known by the end of ``day``: the last snapshot
    before it plus the customer drops after that (all drops since ``first_day`` when there
    is no earlier snapshot, so a first or lone day is right too)."""
    previous = latest_partition_before(output, CURRENT_CUSTOMERS, day)
    since = previous + dt.timedelta(days=1) if previous else first_day
    carried = [] if previous is None else [_read_snapshot(output, previous)]
    drops = _read(output, "customers", since, day)
    return core.latest_versions(pd.concat([*carried, drops]), ["customer_id"]).drop(columns="date")


def current_customers(
    output: Path, day: Day, columns: tuple[str, ...] = ("signed_up_at", "churned_at")
) -> pd.DataFrame:
    """The customer snapshot of ``day`` (or of the last day before it with one): the newest
    version of each customer, with ``columns``."""
    latest = latest_partition_before(output, CURRENT_CUSTOMERS, day.date + dt.timedelta(days=1))
    if latest is None:
        return to_frame(STG_CUSTOMERS.arrow_schema.empty_table().select(["customer_id", *columns]))
    return _read_snapshot(output, latest, ["customer_id", *columns]).drop(columns="date")


def _read_snapshot(output: Path, day: dt.date, columns: list[str] | None = None) -> pd.DataFrame:
    return read_window(output, CURRENT_CUSTOMERS, STG_CUSTOMERS.arrow_schema, day, day, columns)


SURVEY_WINDOW_DAYS = 30


def survey_responses(
    output: Path,
    day: Day,
    ticket_days: int,
    late_days: int = 0,
    customer_columns: tuple[str, ...] = ("segment", "plan"),
    ticket_columns: tuple[str, ...] = ("ticket_id", "topic", "agent_group"),
    answer_columns: tuple[str, ...] = (),
) -> pd.DataFrame:
    """Responses submitted in the 30 days ending on ``day`` (also those that arrived in the
    ``late_days`` drops after it), their ``answer_columns`` (all when empty), with their
    customer's segment and plan (newest version) and their ticket's topic and agent group:
    a ticket live at the day's end or that left the live state in the ``ticket_days`` up
    to it (closed, e.g.)."""
    window_start = day.date - dt.timedelta(days=SURVEY_WINDOW_DAYS)
    in_window = (ds.field("submitted_at") >= day.shifted(1 - SURVEY_WINDOW_DAYS)) & (
        ds.field("submitted_at") < day.end
    )
    columns = list(answer_columns) or None
    responses = pd.concat(
        [
            _read(output, "survey_responses", window_start, day.date, columns=columns,
                  row_filter=in_window),
            _late(output, "survey_responses", day, late_days, "submitted_at", columns, in_window),
        ],
        ignore_index=True,
    )  # fmt: skip
    responses = core.latest_versions(responses, ["response_id"]).drop(columns=["date"])
    customers = current_customers(output, day, customer_columns)
    ids = responses["ticket_id"].dropna().unique()
    tickets = ticket_state.tickets_known_on(
        output, day.date, ticket_days, list(ticket_columns), pa.array(ids, pa.string())
    )
    return responses.merge(customers, on="customer_id", how="left").merge(
        tickets, on="ticket_id", how="left"
    )


def ticket_states(output: Path, day: Day, columns: list[str] | None = None) -> pd.DataFrame:
    """The day's fct_tickets rows (tickets created or touched on it, as of its end)."""
    spec = tables.FCT_TICKETS
    columns = columns or ["ticket_id", "created_at", "channel", "priority", "status"]
    return read_window(output, spec.name, spec.arrow_schema, day.date, day.date, columns)


def events_of_day(output: Path, day: Day, event_type: str, late_days: int = 0) -> pd.DataFrame:
    """The day's events of one type (from the day's drop, the day before's and the
    ``late_days`` after it)."""
    events = _read(
        output,
        "ticket_events",
        day.date - dt.timedelta(days=EVENT_ARRIVAL_SLACK_DAYS),
        day.date + dt.timedelta(days=late_days),
        row_filter=(ds.field("event_type") == event_type) & _on_day("event_at", day),
    )
    return events.drop_duplicates(list(TICKET_EVENTS_SOURCE.key))


def answers_of_day(output: Path, day: Day, late_days: int = 0) -> pd.DataFrame:
    """Survey answers submitted on ``day`` (newest version of each), also those that
    arrived in the ``late_days`` drops after it."""
    responses = _read(
        output,
        "survey_responses",
        day.date - dt.timedelta(days=EVENT_ARRIVAL_SLACK_DAYS),
        day.date + dt.timedelta(days=late_days),
        columns=["response_id", "customer_id", "survey_type", "score", "submitted_at"],
        row_filter=_on_day("submitted_at", day),
    )
    return core.latest_versions(responses, ["response_id"])


def previous_snapshot(
    output: Path,
    day: Day,
    first_day: dt.date,
    spec: tables.TableSpec = tables.FCT_OPEN_TICKETS,
) -> pd.DataFrame:
    """The newest snapshot (fct_open_tickets, dim_customers) before ``day`` (normally the day
    before; after days skipped for missing drops, the last one computed). Empty on the
    first day."""
    earlier = latest_partition_before(output, spec.name, day.date)
    if earlier is None or earlier < first_day:
        return to_frame(spec.arrow_schema.empty_table())
    return read_window(output, spec.name, spec.arrow_schema, earlier, earlier)
