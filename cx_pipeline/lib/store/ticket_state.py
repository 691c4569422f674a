"""The live tickets, carried from day to day: a day reads its own drops, not all history.

A ticket is *live* from its first row until it is closed, or until it has stayed solved
for ``reopen_days`` after its last event (after that a reopen is not expected). Open,
pending and on-hold tickets stay live however old they are, so a ticket open for a year
still leaves the backlog when it is solved. The state at the end of day D is two Parquet
tables under the output root, ``date=D`` partitions like every other table:

    int_live_tickets        newest version of each live ticket, with its arrival day, its
                            status at D's end and the instant of its last event
    int_live_ticket_events  every event of the live tickets (and events whose ticket
                            has not arrived yet, kept ``reopen_days``)
    int_left_tickets        the tickets that left the live state on D (closed, or solved
                            ``reopen_days`` ago), a few columns each: with the live
                            tickets, whom a day's event or survey answer can belong to
                            (``tickets_known_on``)

Day D reads the state of the last day computed before it plus the staged drops from that
day to D, so its cost follows the live tickets and one day of drops, never the length of
history. The rows come from staging, already validated; the state is not a published
table (no warehouse copy).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from cx_pipeline.lib.frames import to_frame
from cx_pipeline.lib.ingest.sources import TICKET_EVENTS
from cx_pipeline.lib.metrics.core import Day
from cx_pipeline.lib.metrics.sql import last_of_each, numbered, queries, query, sql_list
from cx_pipeline.lib.store.parquet import latest_partition_before, read_window
from cx_pipeline.lib.store.tables import STAGED_TABLES

LIVE_TICKETS = "int_live_tickets"
LIVE_EVENTS = "int_live_ticket_events"
LEFT_TICKETS = "int_left_tickets"
ARRIVED = "arrived_on"
CLOSED_STATUSES = ("closed",)
SOLVED_STATUSES = ("solved",)
ONE_DAY = dt.timedelta(days=1)
_STAGED_TICKETS = STAGED_TABLES["tickets"]
_STAGED_EVENTS = STAGED_TABLES["ticket_events"]
STATE_SCHEMAS = {
    LIVE_TICKETS: _STAGED_TICKETS.arrow_schema.append(pa.field(ARRIVED, pa.date32()))
    .append(pa.field("status", pa.string()))
    .append(pa.field("last_event_at", pa.timestamp("us", tz="UTC"))),
    LIVE_EVENTS: _STAGED_EVENTS.arrow_schema.append(pa.field(ARRIVED, pa.date32())),
}
# What a lookup of a ticket by id needs (an event's creation check, a survey's topic).
LEFT_COLUMNS = ["ticket_id", "customer_id", "created_at", "topic", "agent_group", "status"]
STATE_SCHEMAS[LEFT_TICKETS] = pa.schema(
    [STATE_SCHEMAS[LIVE_TICKETS].field(c) for c in LEFT_COLUMNS]
)
TICKET_COLUMNS = _STAGED_TICKETS.arrow_schema.names
EVENT_COLUMNS = _STAGED_EVENTS.arrow_schema.names


@dataclass(frozen=True)
class LiveTickets:
    tickets: pd.DataFrame  # STATE_SCHEMAS[LIVE_TICKETS]
    events: pd.DataFrame  # STATE_SCHEMAS[LIVE_EVENTS]
    # First arrival day not in the carried state: rows from it on are new.
    new_since: dt.date
    # The tickets that left on the day the state was advanced to (empty before).
    left: pd.DataFrame = field(
        default_factory=lambda: to_frame(STATE_SCHEMAS[LEFT_TICKETS].empty_table())
    )

    def touched_on(self, day: Day) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(tickets, events) of every ticket created or with an event on ``day``, or whose
        row is new (a late row gets its status here rather than never): the newest
        version of each ticket and all its events before the day's end."""
        tickets, events = queries(
            [_TOUCHED_TICKETS, _TOUCHED_EVENTS],
            {"day_start": day.start, "day_end": day.end, "new_since": self.new_since,
             "day": day.date},
            tickets=numbered(self.tickets),
            events=numbered(self.events),
        )  # fmt: skip
        return tickets, events

    def with_late_rows(self, output: Path, day: Day, late_days: int) -> LiveTickets:
        """The state joined by the day's late rows: tickets created and events that happened
        before its end that arrived in the ``late_days`` drops after it. For computing the
        day only (a rerun after they landed restates it); never carried forward."""
        if late_days <= 0:
            return self
        first, last = day.date + ONE_DAY, day.date + dt.timedelta(days=late_days)
        late_tickets, late_events = (
            _arrived(output, spec.name, spec.arrow_schema, first, last, (at, day.end))
            for spec, at in ((_STAGED_TICKETS, "created_at"), (_STAGED_EVENTS, "event_at"))
        )
        if late_tickets.empty and late_events.empty:
            return self
        tickets, events = _merged(self.tickets, self.events, late_tickets, late_events)
        return LiveTickets(tickets, events, self.new_since)

    def advance(self, facts: pd.DataFrame, day: Day, reopen_days: int) -> LiveTickets:
        """The state at the end of ``day``: touched tickets take their status from the
        day's ``facts`` (fct_tickets rows); closed and long-solved tickets leave."""
        stale = day.shifted(1 - reopen_days)
        frames = {
            "tickets": self.tickets,
            "events": numbered(self.events),
            "facts": facts[["ticket_id", "status"]],
        }
        updated = query(_ADVANCED_TICKETS, {"day_end": day.end, "stale": stale}, **frames)
        done = updated.pop("done").to_numpy(dtype=bool)
        tickets = updated[~done].reset_index(drop=True)
        events = query(_ADVANCED_EVENTS, {"stale": stale}, kept=tickets[["ticket_id"]], **frames)
        left = updated.loc[done, LEFT_COLUMNS].reset_index(drop=True)
        return LiveTickets(tickets, events, day.date + ONE_DAY, left)

    def frames(self) -> dict[str, pd.DataFrame]:
        return {LIVE_TICKETS: self.tickets, LIVE_EVENTS: self.events, LEFT_TICKETS: self.left}


def load_live_tickets(output: Path, day: dt.date, arrival_slack_days: int) -> LiveTickets:
    """The state of the last day computed before ``day``, updated with the staged drops
    after that day up to ``day`` (with no state yet: the drops of ``day`` and the
    ``arrival_slack_days`` before it). The state holds every row of the drops it was built
    from, whatever their timestamps, so no drop is read twice."""
    previous = latest_partition_before(output, LIVE_TICKETS, day)
    since = previous + ONE_DAY if previous else day - dt.timedelta(days=arrival_slack_days)
    carried = {name: _read_state(output, name, previous) for name in (LIVE_TICKETS, LIVE_EVENTS)}
    new_tickets = _arrived(output, _STAGED_TICKETS.name, _STAGED_TICKETS.arrow_schema, since, day)
    new_events = _arrived(output, _STAGED_EVENTS.name, _STAGED_EVENTS.arrow_schema, since, day)
    tickets, events = _merged(carried[LIVE_TICKETS], carried[LIVE_EVENTS], new_tickets, new_events)
    return LiveTickets(tickets, events, since)


def tickets_known_on(
    output: Path,
    day: dt.date,
    left_days: int,
    columns: list[str],
    ids: pa.Array | None = None,
) -> pd.DataFrame:
    """``columns`` of the tickets live at the end of ``day`` (of the last day with a state)
    and of those that left the live state in the ``left_days`` before it or on it: whom an
    event of ``day``, or a survey answer given at most ``left_days`` after its ticket was
    closed, can belong to. The newest version of each (only ``ids`` when given). Read in
    the time of the live tickets and ``left_days`` small files, however long the history
    or the lookback."""
    wanted = None if ids is None else ds.field("ticket_id").isin(ids)
    read = list(dict.fromkeys(["ticket_id", *columns]))
    latest = latest_partition_before(output, LIVE_TICKETS, day + ONE_DAY)
    live = [] if latest is None else [_read(output, LIVE_TICKETS, latest, latest, read, wanted)]
    start = day - dt.timedelta(days=left_days)
    left = _read(output, LEFT_TICKETS, start, day, read, wanted)
    # Oldest first, the live state last: a ticket that left and came back is live.
    known = pd.concat([left.sort_values("date", kind="stable"), *live], ignore_index=True)
    return last_of_each(known, ["ticket_id"])[columns].reset_index(drop=True)


def _read(
    output: Path,
    name: str,
    start: dt.date,
    end: dt.date,
    columns: list[str] | None = None,
    row_filter: Any = None,
) -> pd.DataFrame:
    return read_window(output, name, STATE_SCHEMAS[name], start, end, columns, row_filter)


def _merged(
    tickets: pd.DataFrame, events: pd.DataFrame, new_tickets: pd.DataFrame, new_events: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The state with newly read rows: the newest version of each ticket, each event once."""
    merged_tickets = query(_NEWEST_TICKETS, carried=tickets, arrived=new_tickets)
    both = pd.concat([events, new_events], ignore_index=True)
    return merged_tickets, query(_FIRST_OF_EACH_EVENT, events=numbered(both))


# Tickets created or with an event on the day, or whose row arrived since the last state (a
# late row gets its status here rather than never; not a later day's late row read for
# this day).
_TOUCHED = f"""
touched AS (
    SELECT ticket_id FROM events WHERE event_at >= $day_start AND event_at < $day_end
    UNION
    SELECT ticket_id FROM tickets
    WHERE (created_at >= $day_start AND created_at < $day_end)
        OR ({ARRIVED} >= $new_since AND {ARRIVED} <= $day)
)"""


def _touched_rows(table: str, columns: list[str], condition: str = "true") -> str:
    """The rows of the touched tickets in ``table``, in the state's order."""
    return f"""
WITH {_TOUCHED}
SELECT {", ".join(columns)} FROM {table}
WHERE ticket_id IN (SELECT ticket_id FROM touched) AND {condition}
ORDER BY row_order
"""


# The newest version of each touched ticket, and all its events before the day's end.
_TOUCHED_TICKETS = _touched_rows("tickets", TICKET_COLUMNS)
_TOUCHED_EVENTS = _touched_rows("events", EVENT_COLUMNS, "event_at < $day_end")
_KEY = ", ".join(TICKET_EVENTS.key)
# The newest version of each ticket (the latest arrival; a drop over the state), with the
# status and last event the state knew. Sorted by id, so a rerun writes the same file.
_NEWEST_TICKETS = f"""
WITH versions AS (
    SELECT * EXCLUDE (status, last_event_at), 0 AS newer FROM carried
    UNION ALL BY NAME SELECT *, 1 AS newer FROM arrived
)
SELECT v.* EXCLUDE (newer), c.status, c.last_event_at
FROM versions v LEFT JOIN carried c USING (ticket_id)
QUALIFY row_number() OVER (PARTITION BY ticket_id ORDER BY v.{ARRIVED} DESC, v.newer DESC) = 1
ORDER BY ticket_id
"""
# The same event in two drops (a resent export): the first one seen. Stored in time order,
# same-instant events by their sequence, then in the order they came: every later step
# breaks ties by this row order.
_FIRST_OF_EACH_EVENT = f"""
SELECT * EXCLUDE (row_order) FROM events
QUALIFY row_number() OVER (PARTITION BY {_KEY} ORDER BY row_order) = 1
ORDER BY event_at, sequence NULLS LAST, row_order
"""
_DONE = f"""status IN {sql_list(CLOSED_STATUSES)}
    OR (status IN {sql_list(SOLVED_STATUSES)} AND last_event_at < $stale)"""
_ADVANCED_TICKETS = f"""
WITH latest AS (
    SELECT ticket_id, max(event_at) AS last_event_at FROM events
    WHERE event_at < $day_end GROUP BY ticket_id
),
updated AS (
    SELECT t.* EXCLUDE (status, last_event_at), coalesce(f.status, t.status) AS status,
        l.last_event_at
    FROM tickets t LEFT JOIN facts f USING (ticket_id) LEFT JOIN latest l USING (ticket_id)
)
SELECT *, coalesce({_DONE}, false) AS done FROM updated ORDER BY ticket_id
"""
# Events of the tickets kept; events of a ticket not arrived yet wait for it as long as a
# solved ticket would.
_ADVANCED_EVENTS = """
SELECT * EXCLUDE (row_order) FROM events e
WHERE e.ticket_id IN (SELECT ticket_id FROM kept)
   OR (e.ticket_id NOT IN (SELECT ticket_id FROM tickets) AND e.event_at >= $stale)
ORDER BY row_order
"""


def _read_state(output: Path, name: str, day: dt.date | None) -> pd.DataFrame:
    if day is None:
        return to_frame(STATE_SCHEMAS[name].empty_table())
    return _read(output, name, day, day).drop(columns="date")


def _arrived(
    output: Path,
    table: str,
    schema: pa.Schema,
    start: dt.date,
    end: dt.date,
    before: tuple[str, Any] | None = None,
) -> pd.DataFrame:
    rows = read_window(output, table, schema, start, end, before=before)
    return rows.rename(columns={"date": ARRIVED})
