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

Day D reads the state of the last day computed before it plus the staged drops from that
day to D, so its cost follows the live tickets and one day of drops, never the length of
history. The rows come from staging, already validated; the state is not a published
table (no warehouse copy).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa

from cx_pipeline.lib.metrics import Day, among
from cx_pipeline.lib.sources import TICKET_EVENTS
from cx_pipeline.lib.storage import latest_partition_before, read_window
from cx_pipeline.lib.tables import STAGED_TABLES

LIVE_TICKETS = "int_live_tickets"
LIVE_EVENTS = "int_live_ticket_events"
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
TICKET_COLUMNS = _STAGED_TICKETS.arrow_schema.names
EVENT_COLUMNS = _STAGED_EVENTS.arrow_schema.names


@dataclass(frozen=True)
class LiveTickets:
    tickets: pd.DataFrame  # STATE_SCHEMAS[LIVE_TICKETS]
    events: pd.DataFrame  # STATE_SCHEMAS[LIVE_EVENTS]
    # First arrival day not in the carried state: rows from it on are new.
    new_since: dt.date

    def touched_on(self, day: Day) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(tickets, events) of every ticket created or with an event on ``day``, or whose
        row is new (a late row gets its status here rather than never): the newest
        version of each ticket and all its events before the day's end."""
        ids = pd.concat(
            [
                self.events.loc[day.contains(self.events["event_at"]), "ticket_id"],
                self.tickets.loc[day.contains(self.tickets["created_at"]), "ticket_id"],
                self.tickets.loc[self.tickets[ARRIVED] >= self.new_since, "ticket_id"],
            ]
        ).drop_duplicates()
        tickets = self.tickets[among(self.tickets["ticket_id"], ids)]
        events = self.events[
            among(self.events["ticket_id"], ids) & (self.events["event_at"] < day.end)
        ]
        return (
            tickets[TICKET_COLUMNS].reset_index(drop=True),
            events[EVENT_COLUMNS].reset_index(drop=True),
        )

    def advance(self, facts: pd.DataFrame, day: Day, reopen_days: int) -> LiveTickets:
        """The state at the end of ``day``: touched tickets take their status from the
        day's ``facts`` (fct_tickets rows); closed and long-solved tickets leave."""
        tickets = self.tickets.copy()
        today = facts.set_index("ticket_id")
        touched = among(tickets["ticket_id"], today.index)
        ids = tickets.loc[touched, "ticket_id"]
        tickets.loc[touched, "status"] = today["status"].reindex(ids).to_numpy()
        past = self.events[self.events["event_at"] < day.end]
        last_event = past.groupby("ticket_id")["event_at"].max()
        # .array keeps the zone (to_numpy would drop it).
        tickets["last_event_at"] = last_event.reindex(tickets["ticket_id"]).array
        stale = day.shifted(1 - reopen_days)
        status = tickets["status"]
        done = status.isin(CLOSED_STATUSES) | (
            status.isin(SOLVED_STATUSES) & (tickets["last_event_at"] < stale)
        )
        kept = tickets[~done.fillna(False).astype(bool)]
        # Events of a ticket not arrived yet wait for it, as long as a solved ticket would.
        orphan = ~among(self.events["ticket_id"], tickets["ticket_id"])
        events = self.events[
            among(self.events["ticket_id"], kept["ticket_id"])
            | (orphan & (self.events["event_at"] >= stale))
        ]
        return LiveTickets(
            kept.reset_index(drop=True), events.reset_index(drop=True), day.date + ONE_DAY
        )

    def frames(self) -> dict[str, pd.DataFrame]:
        return {LIVE_TICKETS: self.tickets, LIVE_EVENTS: self.events}


def load_live_tickets(output: Path, day: dt.date, arrival_slack_days: int) -> LiveTickets:
    """The state of the last day computed before ``day``, updated with the staged drops
    after that day up to ``day`` (with no state yet: the drops of ``day`` and the
    ``arrival_slack_days`` before it). The state holds every row of the drops it was built
    from, whatever their timestamps, so no drop is read twice."""
    previous = latest_partition_before(output, LIVE_TICKETS, day)
    since = previous + ONE_DAY if previous else day - dt.timedelta(days=arrival_slack_days)
    carried = {name: _read_state(output, name, previous) for name in STATE_SCHEMAS}
    new_tickets = _arrived(output, _STAGED_TICKETS.name, _STAGED_TICKETS.arrow_schema, since, day)
    new_events = _arrived(output, _STAGED_EVENTS.name, _STAGED_EVENTS.arrow_schema, since, day)
    old_tickets = carried[LIVE_TICKETS]
    tickets = (
        pd.concat([old_tickets[[*TICKET_COLUMNS, ARRIVED]], new_tickets], ignore_index=True)
        .sort_values(ARRIVED, kind="stable")
        .drop_duplicates("ticket_id", keep="last")
    )
    known = old_tickets.set_index("ticket_id")[["status", "last_event_at"]]
    tickets = tickets.join(known, on="ticket_id")
    # The same event in two drops (a resent export): the first one seen.
    events = pd.concat([carried[LIVE_EVENTS], new_events], ignore_index=True).drop_duplicates(
        list(TICKET_EVENTS.key)
    )
    return LiveTickets(tickets.reset_index(drop=True), events.reset_index(drop=True), since)


def _read_state(output: Path, name: str, day: dt.date | None) -> pd.DataFrame:
    schema = STATE_SCHEMAS[name]
    if day is None:
        return schema.empty_table().to_pandas()
    return read_window(output, name, schema, day, day).drop(columns="date")


def _arrived(
    output: Path, table: str, schema: pa.Schema, start: dt.date, end: dt.date
) -> pd.DataFrame:
    return read_window(output, table, schema, start, end).rename(columns={"date": ARRIVED})
