"""The carried live-ticket state on hand-made drops; who stays live was worked out by hand.

Drops (UTC, reopen window 3 days):
  03-01  tickets A (09:00), B (10:00); events A reply 10:00, A solved 11:00, B reply 12:00,
         and a reply of Z at 13:00, a ticket whose row has not arrived
  03-02  ticket C (08:00); events A closed 09:00, C reply 08:30, C solved 09:00
  03-03, 03-04, 03-05  empty
  03-06  a new version of B (topic changed); B solved 15:00
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow as pa

from cx_pipeline.lib.metrics.business_hours import ALWAYS_OPEN, BusinessSchedule
from cx_pipeline.lib.metrics.core import Day
from cx_pipeline.lib.metrics.tickets import (
    SlaTargets,
    status_durations,
    ticket_activity,
    ticket_facts,
)
from cx_pipeline.lib.store.parquet import write_frame, write_partition
from cx_pipeline.lib.store.tables import STAGED_TABLES
from cx_pipeline.lib.store.ticket_state import STATE_SCHEMAS, load_live_tickets, tickets_known_on

REOPEN_DAYS = 3


def _ticket(ticket_id: str, created: str, topic: str = "billing") -> dict[str, object]:
    return {
        "ticket_id": ticket_id,
        "customer_id": "C1",
        "created_at": pd.Timestamp(created, tz="UTC"),
        "channel": "email",
        "topic": topic,
        "priority": "normal",
        "agent_group": "tier1",
        "journey_stage": "support",
    }


def _event(ticket_id: str, at: str, kind: str) -> dict[str, object]:
    return {
        "ticket_id": ticket_id,
        "event_at": pd.Timestamp(at, tz="UTC"),
        "event_type": kind,
        "actor": "agent-1",
        "handle_seconds": None,
    }


DROPS = {
    "03-01": (
        [_ticket("A", "2026-03-01 09:00"), _ticket("B", "2026-03-01 10:00")],
        [
            _event("A", "2026-03-01 10:00", "agent_reply"),
            _event("A", "2026-03-01 11:00", "solved"),
            _event("B", "2026-03-01 12:00", "agent_reply"),
            _event("Z", "2026-03-01 13:00", "agent_reply"),
        ],
    ),
    "03-02": (
        [_ticket("C", "2026-03-02 08:00")],
        [
            _event("A", "2026-03-02 09:00", "closed"),
            _event("C", "2026-03-02 08:30", "agent_reply"),
            _event("C", "2026-03-02 09:00", "solved"),
        ],
    ),
    "03-03": ([], []),
    "03-04": ([], []),
    "03-05": ([], []),
    "03-06": (
        [_ticket("B", "2026-03-01 10:00", topic="refund")],
        [_event("B", "2026-03-06 15:00", "solved")],
    ),
}


def _stage(root: Path, day: dt.date, source: str, rows: list[dict[str, object]]) -> None:
    spec = STAGED_TABLES[source]
    write_partition(root, spec.name, day, pa.Table.from_pylist(rows, schema=spec.arrow_schema))


def _run_days(root: Path) -> dict[str, tuple[set[str], dict[str, str], int]]:
    """Per day: (touched tickets, live tickets with their status, live events)."""
    seen = {}
    for name, (tickets, events) in DROPS.items():
        date = dt.date.fromisoformat(f"2026-{name}")
        _stage(root, date, "tickets", tickets)
        _stage(root, date, "ticket_events", events)
        day = Day(date, "UTC")
        live = load_live_tickets(root, date, arrival_slack_days=1)
        touched, touched_events = live.touched_on(day)
        facts = status_durations(touched, touched_events, day)
        after = live.advance(facts, day, REOPEN_DAYS)
        for table, frame in after.frames().items():
            write_frame(root, table, date, frame, STATE_SCHEMAS[table])
        statuses = dict(zip(after.tickets["ticket_id"], after.tickets["status"], strict=True))
        seen[name] = (set(touched["ticket_id"]), statuses, len(after.events))
    return seen


def test_live_tickets_day_by_day(tmp_path: Path) -> None:
    seen = _run_days(tmp_path)
    # 03-01: A solved, B open; Z's reply waits for its ticket.
    assert seen["03-01"] == ({"A", "B"}, {"A": "solved", "B": "open"}, 4)
    # 03-02: A closed leaves with its 3 events; C solved; B untouched stays open.
    assert seen["03-02"] == ({"A", "C"}, {"B": "open", "C": "solved"}, 4)
    assert seen["03-03"] == (set(), {"B": "open", "C": "solved"}, 4)
    # 03-04: Z's reply is older than the 3-day window (before 03-02 00:00): dropped.
    assert seen["03-04"] == (set(), {"B": "open", "C": "solved"}, 3)
    # 03-05: C solved at 03-02 09:00, before 03-03 00:00: leaves. B, open for four
    # days, stays however old it gets.
    assert seen["03-05"] == (set(), {"B": "open"}, 1)
    # 03-06: B solved, still live (a reopen may follow); both its events kept.
    assert seen["03-06"] == ({"B"}, {"B": "solved"}, 2)


def test_the_newest_version_of_a_ticket_wins(tmp_path: Path) -> None:
    _run_days(tmp_path)
    live = load_live_tickets(tmp_path, dt.date(2026, 3, 7), arrival_slack_days=1)
    tickets = live.tickets.set_index("ticket_id")
    assert tickets.loc["B", "topic"] == "refund"
    assert tickets.loc["B", "created_at"] == pd.Timestamp("2026-03-01 10:00", tz="UTC")
    assert tickets.loc["B", "last_event_at"] == pd.Timestamp("2026-03-06 15:00", tz="UTC")


def test_a_ticket_is_known_while_live_and_for_some_days_after_it_left(tmp_path: Path) -> None:
    _run_days(tmp_path)

    def known(day: str, left_days: int) -> list[tuple[str, str]]:
        date = dt.date.fromisoformat(f"2026-{day}")
        rows = tickets_known_on(tmp_path, date, left_days, ["ticket_id", "topic"])
        return sorted(rows.itertuples(index=False, name=None))

    # Live at 03-03's end: B (open) and C (solved). A left when closed on 03-02.
    assert known("03-03", 0) == [("B", "billing"), ("C", "billing")]
    assert known("03-03", 1) == [("A", "billing"), ("B", "billing"), ("C", "billing")]
    # 03-06: B's newest version; C left on 03-05 (solved three days), A on 03-02.
    assert known("03-06", 0) == [("B", "refund")]
    assert known("03-06", 1) == [("B", "refund"), ("C", "billing")]
    assert known("03-06", 4) == [("A", "billing"), ("B", "refund"), ("C", "billing")]
    # Only the asked-for ids.
    some = tickets_known_on(tmp_path, dt.date(2026, 3, 6), 4, ["topic"], pa.array(["A"]))
    assert some.to_dict("records") == [{"topic": "billing"}]


def test_same_instant_events_follow_their_sequence_then_drop_order(tmp_path: Path) -> None:
    # Both tickets get "reopened" then "solved" in the drop, all at 12:00. D's sequence
    # numbers say the solve came first (solved 1, reopened 2): D ends open. E has no
    # sequence: drop order stands, and E ends solved.
    day = dt.date(2026, 3, 1)
    at = "2026-03-01 12:00"
    events = [
        {**_event("D", at, "reopened"), "sequence": 2.0},
        {**_event("D", at, "solved"), "sequence": 1.0},
        _event("E", at, "reopened"),
        _event("E", at, "solved"),
    ]
    _stage(
        tmp_path,
        day,
        "tickets",
        [_ticket("D", "2026-03-01 09:00"), _ticket("E", "2026-03-01 09:00")],
    )
    _stage(tmp_path, day, "ticket_events", events)
    live = load_live_tickets(tmp_path, day, arrival_slack_days=0)
    touched, touched_events = live.touched_on(Day(day, "UTC"))
    facts = status_durations(touched, touched_events, Day(day, "UTC"))
    assert dict(zip(facts["ticket_id"], facts["status"], strict=True)) == {
        "D": "open",
        "E": "solved",
    }


ROUND_THE_CLOCK = BusinessSchedule.from_settings("UTC", ALWAYS_OPEN)


def _created_per_day(root: Path, date: dt.date, late_days: int) -> tuple[set[str], int]:
    """Run one day as the tickets mart does: (tickets with a row, tickets created)."""
    day = Day(date, "UTC")
    live = load_live_tickets(root, date, arrival_slack_days=1)
    tickets, events = live.with_late_rows(root, day, late_days).touched_on(day)
    facts = ticket_facts(
        tickets.assign(customer_segment="smb"), events, day, SlaTargets(), "s", ROUND_THE_CLOCK
    )
    for table, frame in live.advance(facts, day, REOPEN_DAYS).frames().items():
        write_frame(root, table, date, frame, STATE_SCHEMAS[table])
    activity = ticket_activity(facts, events, day)
    return set(facts["ticket_id"]), int(activity["tickets_created"].sum())


def test_a_late_row_restates_its_day_when_the_day_is_rerun(tmp_path: Path) -> None:
    # L was created 03-01 23:30 and answered 23:45, but both rows come in the 03-02 drop.
    first, second = dt.date(2026, 3, 1), dt.date(2026, 3, 2)
    _stage(tmp_path, first, "tickets", [_ticket("A", "2026-03-01 10:00")])
    _stage(tmp_path, first, "ticket_events", [])
    # The daily run of 03-01, before the 03-02 drop landed: A only.
    assert _created_per_day(tmp_path, first, late_days=3) == ({"A"}, 1)
    _stage(tmp_path, second, "tickets", [_ticket("L", "2026-03-01 23:30"),
                                         _ticket("B", "2026-03-02 09:00")])  # fmt: skip
    _stage(tmp_path, second, "ticket_events", [_event("L", "2026-03-01 23:45", "agent_reply")])
    # The rerun of 03-01 (the late-rows sensor asks for it) counts L as created that day.
    assert _created_per_day(tmp_path, first, late_days=3) == ({"A", "L"}, 2)
    # 03-02: L arrives in the state and gets its row (a late row's row on its arrival day)
    # but is not created again; B is.
    assert _created_per_day(tmp_path, second, late_days=3) == ({"L", "B"}, 1)
    # With no late days, 03-01 stays as the daily run saw it.
    assert _created_per_day(tmp_path, first, late_days=0) == ({"A"}, 1)
