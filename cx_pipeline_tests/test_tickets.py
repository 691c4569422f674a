"""Per-ticket facts and daily ticket activity on hand-made tickets; values worked out by hand."""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pandas as pd
import pytest

from cx_pipeline.lib.metrics.business_hours import BusinessSchedule
from cx_pipeline.lib.metrics.core import Day
from cx_pipeline.lib.metrics.tickets import SlaTargets, ticket_activity, ticket_facts

DAY = Day(dt.date(2026, 3, 4), "UTC")  # a Wednesday
OFFICE = BusinessSchedule.from_settings(
    "UTC", dict.fromkeys(["mon", "tue", "wed", "thu", "fri"], "09:00-17:00")
)
# Defaults 24 h / 48 h; urgent tickets: 1 h to first reply, 4 h to resolution.
SLA = SlaTargets(first_response={"urgent": 60}, resolution={"urgent": 240})


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


TICKETS = pd.DataFrame(
    {
        "ticket_id": ["A", "B", "C", "D"],
        "customer_id": ["C1", "C2", "C1", "C3"],
        "created_at": [
            utc("2026-03-01 09:00"),
            utc("2026-03-04 08:00"),
            utc("2026-03-04 09:00"),
            utc("2026-03-01 12:00"),
        ],
        "channel": ["email", "chat", "email", "email"],
        "topic": ["billing", "login", "billing", "bug"],
        "priority": ["high", "urgent", "high", "high"],
        "agent_group": ["g", "g", None, "g"],
        "journey_stage": ["purchase", "onboarding", "purchase", "support"],
        "customer_segment": ["smb", "smb", "smb", None],
    }
).astype(
    dict.fromkeys(
        [
            "ticket_id",
            "customer_id",
            "channel",
            "topic",
            "priority",
            "agent_group",
            "journey_stage",
            "customer_segment",
        ],
        "str",
    )  # fmt: skip
)

EVENTS = pd.DataFrame(
    [
        ("A", "2026-03-01 10:00", "agent_reply", "agent-1", None),
        ("A", "2026-03-02 09:00", "customer_reply", "customer", None),
        ("A", "2026-03-02 09:30", "agent_reply", "agent-2", None),
        ("A", "2026-03-04 09:00", "solved", "agent-2", None),  # first resolution: 3 days
        ("A", "2026-03-04 10:00", "reopened", "customer", None),
        ("A", "2026-03-04 11:00", "agent_reply", "agent-1", None),
        ("A", "2026-03-04 12:00", "solved", "agent-1", None),  # full resolution: 4500 min
        ("B", "2026-03-04 08:30", "agent_reply", "agent-3", 300.0),
        ("B", "2026-03-04 08:40", "escalated", "agent-3", None),
        ("B", "2026-03-04 10:00", "agent_reply", "agent-4", 500.0),
        ("B", "2026-03-04 11:00", "solved", "agent-4", None),
        ("D", "2026-03-01 13:00", "agent_reply", "agent-5", None),
        ("D", "2026-03-03 09:00", "pending", "agent-5", None),
        ("D", "2026-03-04 10:00", "customer_reply", "customer", None),
        ("D", "2026-03-04 10:20", "agent_reply", "agent-5", None),
        ("D", "2026-03-05 09:00", "solved", "agent-5", None),  # after the day: ignored
    ],
    columns=["ticket_id", "event_at", "event_type", "actor", "handle_seconds"],
).assign(event_at=lambda f: pd.to_datetime(f["event_at"], utc=True).dt.as_unit("us"))
EVENTS = EVENTS.astype({"ticket_id": "str", "event_type": "str", "actor": "str"})
TICKETS["created_at"] = TICKETS["created_at"].astype("datetime64[us, UTC]")


@pytest.fixture(scope="module")
def facts() -> pd.DataFrame:
    return ticket_facts(TICKETS, EVENTS, DAY, SLA, "s", OFFICE).set_index("ticket_id")


def test_reopened_ticket_facts(facts: pd.DataFrame) -> None:
    a = facts.loc["A"]
    assert a["first_response_minutes"] == 60
    assert a["first_resolution_minutes"] == 3 * 24 * 60
    assert a["full_resolution_minutes"] == 3 * 24 * 60 + 180
    assert (a["solves"], a["reopens"], a["agent_replies"], a["customer_replies"]) == (2, 1, 3, 1)
    assert a["interactions"] == 4
    assert a["first_reopened_at"] == pd.Timestamp("2026-03-04 10:00", tz="UTC")
    assert pd.isna(facts.loc["B", "first_reopened_at"])
    assert a["touches"] == "two_touch"  # two agent replies before the first solve
    assert a["distinct_agents"] == 2
    assert a["status"] == "solved"
    assert bool(a["first_response_sla_met"]) is True  # 60 min <= 24 h
    assert bool(a["resolution_sla_met"]) is False  # 3 days > 48 h
    assert not a["solved_same_day"]
    assert a["customer_key"] == hashlib.sha256(b"sC1").hexdigest()[:32]


def test_urgent_escalated_ticket_facts(facts: pd.DataFrame) -> None:
    b = facts.loc["B"]
    assert (b["first_response_minutes"], b["first_resolution_minutes"]) == (30, 180)
    assert bool(b["first_response_sla_met"]) and bool(b["resolution_sla_met"])  # urgent: 1 h, 4 h
    assert b["escalated"] and b["solved_same_day"]
    assert b["handle_seconds"] == 800
    assert b["touches"] == "two_touch"


def test_untouched_and_pending_tickets(facts: pd.DataFrame) -> None:
    c = facts.loc["C"]
    assert c["status"] == "new"
    assert c["age_minutes"] == 15 * 60  # 09:00 to the day's end
    # 15 h is not yet late for a 24 h first reply nor a 48 h resolution: undecided.
    assert pd.isna(c["first_response_sla_met"]) and pd.isna(c["resolution_sla_met"])
    assert pd.isna(c["touches"]) and np.isnan(c["handle_seconds"])
    d = facts.loc["D"]
    # Pending from 03-03; the customer's reply on 03-04 opens it again (the 03-05 solve is
    # after the day).
    assert d["status"] == "open"
    assert bool(d["resolution_sla_met"]) is False  # open for 3.5 days at the day's end
    assert pd.isna(d["first_resolved_at"])


def test_daily_ticket_activity(facts: pd.DataFrame) -> None:
    activity = ticket_activity(facts.reset_index(), EVENTS[EVENTS["event_at"] < DAY.end], DAY)
    # Rows are channel x priority x journey stage x customer segment.
    rows = activity.set_index(["channel", "priority", "journey_stage", "customer_segment"])
    email = rows.loc[("email", "high", "purchase", "smb")]  # A and C
    assert email["tickets_created"] == 1  # C
    assert (email["tickets_solved"], email["full_resolution_minutes_mean"]) == (1, 4500)
    assert (email["tickets_reopened"], email["reopen_rate"]) == (1, 1.0)
    assert email["tickets_resolved"] == 1  # A's first resolution
    assert email["resolved_two_touch"] == 1 and email["first_contact_resolution_rate"] == 0
    assert email["interactions_per_resolved_ticket"] == 4
    assert email["resolution_sla_rate"] == 0
    assert email["tickets_first_responded"] == 0 and np.isnan(email["first_response_sla_rate"])
    # A's 11:00 reply follows its own earlier reply, so it is not a response.
    assert email["agent_responses"] == 0
    assert np.isnan(email["average_handle_seconds"])
    # D (no customer record: segment unknown): its 10:20 reply answers the 10:00 message.
    support = rows.loc[("email", "high", "support", "(unknown)")]
    assert (support["agent_responses"], support["response_minutes_mean"]) == (1, 20)
    assert support["tickets_created"] == 0
    chat = rows.loc[("chat", "urgent", "onboarding", "smb")]
    assert (chat["tickets_created"], chat["tickets_solved"], chat["tickets_resolved"]) == (1, 1, 1)
    assert chat["escalation_rate"] == 1.0
    assert chat["resolution_sla_rate"] == 1.0 and chat["first_response_sla_rate"] == 1.0
    assert (chat["handled_interactions"], chat["average_handle_seconds"]) == (2, 400)
    assert (chat["agent_responses"], chat["response_minutes_sum"]) == (1, 30)
    assert chat["reopen_rate"] == 0


def test_business_minutes_count_office_hours_only(facts: pd.DataFrame) -> None:
    # Office hours Mon-Fri 09:00-17:00 UTC; 03-01 is a Sunday, 03-04 a Wednesday.
    a = facts.loc["A"]
    assert a["first_response_business_minutes"] == 0  # Sunday 09:00 -> 10:00
    assert a["first_resolution_business_minutes"] == 480 + 480  # Mon + Tue, Wed 09:00
    assert a["full_resolution_business_minutes"] == 960 + 180  # + Wed 09:00-12:00
    b = facts.loc["B"]
    # Created Wed 08:00 (before opening), answered 08:30, solved 11:00.
    assert (b["first_response_business_minutes"], b["first_resolution_business_minutes"]) == (
        0,
        120,
    )
    assert np.isnan(facts.loc["C", "first_resolution_business_minutes"])  # not resolved


def test_status_durations(facts: pd.DataFrame) -> None:
    # D: new 03-01 12:00 -> first reply 13:00 (60); open -> pending 03-03 09:00 (2640);
    # pending -> the customer's reply 03-04 10:00 (1500); open -> the day's end (840).
    d = facts.loc["D"]
    assert d["requester_wait_minutes"] == 60 + 2640 + 840
    assert d["agent_work_minutes"] == 60 + 2640 + 840
    assert d["agent_wait_minutes"] == 1500
    assert d["on_hold_minutes"] == 0
    assert d["requester_wait_minutes"] + d["agent_wait_minutes"] == d["age_minutes"]
    # A: new 60, open 03-01 10:00 -> solved 03-04 09:00 (4260), reopened 10:00 -> 12:00
    # (120); time while solved does not count.
    assert facts.loc["A", "requester_wait_minutes"] == 60 + 4260 + 120
    # C: new for all 15 hours to the day's end.
    assert facts.loc["C", "agent_work_minutes"] == 15 * 60
    assert facts.loc["D", "customer_segment"] == "(unknown)"


def facts_of_b(events: list[tuple[str, str]]) -> pd.Series:
    """ticket_facts of B (created 03-04 08:00) with the given (time on 03-04, event type)
    events, all by one agent."""
    tickets = TICKETS[TICKETS["ticket_id"] == "B"]
    frame = pd.DataFrame(
        {
            "ticket_id": ["B"] * len(events),
            "event_at": pd.to_datetime([f"2026-03-04 {at}" for at, _ in events], utc=True).as_unit(
                "us"
            ),
            "event_type": [kind for _, kind in events],
            "actor": ["agent-3"] * len(events),
            "handle_seconds": [None] * len(events),
        }
    ).astype({"ticket_id": "str", "event_type": "str", "actor": "str", "handle_seconds": "float"})
    return ticket_facts(tickets, frame, DAY, SLA, "s", OFFICE).iloc[0]


def test_on_hold_counts_as_requester_wait() -> None:
    b = facts_of_b([("08:30", "agent_reply"), ("09:00", "on_hold"), ("10:30", "open")])
    # new 08:00-08:30 (30), open 08:30-09:00 (30), on hold 09:00-10:30 (90),
    # open 10:30 -> the day's end (810).
    assert b["on_hold_minutes"] == 90
    assert b["requester_wait_minutes"] == 30 + 30 + 90 + 810
    assert b["agent_work_minutes"] == 30 + 30 + 810
    assert b["status"] == "open"


def test_only_the_reply_that_ends_a_wait_moves_the_status() -> None:
    b = facts_of_b(
        [
            ("08:20", "customer_reply"),  # a new ticket stays new: no agent has answered
            ("08:40", "agent_reply"),  # new -> open
            ("09:00", "pending"),
            ("09:30", "agent_reply"),  # an agent's follow-up: still waiting on the customer
            ("10:00", "customer_reply"),  # pending -> open
            ("11:00", "pending"),  # a status event overrides the reply's move
        ]
    )
    # new 08:00-08:40 (40), open 08:40-09:00 (20), pending 09:00-10:00 (60),
    # open 10:00-11:00 (60), pending 11:00 -> the day's end (780).
    assert b["requester_wait_minutes"] == 40 + 20 + 60
    assert b["agent_work_minutes"] == 40 + 20 + 60
    assert b["agent_wait_minutes"] == 60 + 780
    assert b["on_hold_minutes"] == 0
    assert b["status"] == "pending"


def test_a_day_with_tickets_but_no_events() -> None:
    # C alone, created 03-04 09:00, nothing happened yet (as on an event log's first day).
    c = ticket_facts(TICKETS[TICKETS["ticket_id"] == "C"], EVENTS.iloc[0:0], DAY, SLA, "s", OFFICE)
    assert c.loc[0, "status"] == "new"
    assert c.loc[0, "requester_wait_minutes"] == 15 * 60


def day_activity(created: dict[str, str], events: list[tuple[str, str, str]]) -> pd.DataFrame:
    """ticket_activity of DAY for tickets like A (email, high) created at ``created`` with
    the given (ticket, instant, event type) events."""
    tickets = TICKETS.iloc[[0] * len(created)].assign(ticket_id=list(created))
    tickets["created_at"] = [utc(at) for at in created.values()]
    tickets["created_at"] = tickets["created_at"].astype("datetime64[us, UTC]")
    frame = pd.DataFrame(events, columns=["ticket_id", "event_at", "event_type"]).assign(
        event_at=lambda f: pd.to_datetime(f["event_at"], utc=True).dt.as_unit("us"),
        actor="agent-1", handle_seconds=np.nan,
    ).astype({"ticket_id": "str", "event_type": "str", "actor": "str"})  # fmt: skip
    return ticket_activity(ticket_facts(tickets, frame, DAY, SLA, "s", OFFICE), frame, DAY)


def test_a_close_after_a_solve_is_not_a_second_solve() -> None:
    # E: solved 03-02, closed 03-04 (the same resolution). F: solved 03-02, reopened
    # 03-03, closed 03-04 (a new resolution). G: closed 03-04 without a solve.
    # H: solved and closed on 03-04 (one resolution, counted once).
    created = {"E": "2026-03-01 09:00", "F": "2026-03-01 09:00", "G": "2026-03-01 09:00",
               "H": "2026-03-04 08:00"}  # fmt: skip
    activity = day_activity(
        created,
        [
            ("E", "2026-03-02 09:00", "solved"), ("E", "2026-03-04 09:00", "closed"),
            ("F", "2026-03-02 09:00", "solved"), ("F", "2026-03-03 09:00", "reopened"),
            ("F", "2026-03-04 10:00", "closed"),
            ("G", "2026-03-04 11:00", "closed"),
            ("H", "2026-03-04 09:00", "solved"), ("H", "2026-03-04 12:00", "closed"),
        ],
    )  # fmt: skip
    # Solved on 03-04: F (its reopen made a new resolution: 3 days 1 h), G (3 days 2 h) and
    # H (solved 09:00, 1 h; its close at 12:00 is the same resolution); not E.
    assert activity["tickets_solved"].sum() == 3
    assert activity["full_resolution_minutes_sum"].sum() == 4380 + 4440 + 60
    assert activity["tickets_reopened"].sum() == 0


def test_a_reopened_ticket_was_not_resolved_at_first_contact() -> None:
    # J: one reply, solved, reopened the same day. K: one reply, solved. Both first
    # resolved on 03-04 with one touch; only K is a first-contact resolution.
    activity = day_activity(
        {"J": "2026-03-04 08:00", "K": "2026-03-04 08:00"},
        [
            ("J", "2026-03-04 08:30", "agent_reply"), ("J", "2026-03-04 09:00", "solved"),
            ("J", "2026-03-04 15:00", "reopened"),
            ("K", "2026-03-04 08:30", "agent_reply"), ("K", "2026-03-04 09:00", "solved"),
        ],
    )  # fmt: skip
    (row,) = activity.itertuples()
    assert (row.tickets_resolved, row.resolved_one_touch, row.resolved_first_contact) == (2, 2, 1)
    assert row.first_contact_resolution_rate == 0.5


def test_handle_times_sum_to_their_decimal_figures() -> None:
    # Summed as whole microseconds, so any order of the rows (and any split between DuckDB's
    # threads) gives the same bits. A's three replies, 0.3, 0.2 and 0.1 s: 0.6 s (as floats
    # in the other order, 0.1 + 0.2 + 0.3 is 0.6000000000000001); B's two: 300.1 + 500.2 =
    # 800.3 s.
    events = EVENTS[EVENTS["event_at"] < DAY.end].copy()
    a_replies = (events["ticket_id"] == "A") & (events["event_type"] == "agent_reply")
    events.loc[a_replies, "handle_seconds"] = [0.3, 0.2, 0.1]
    events["handle_seconds"] = events["handle_seconds"].replace({300.0: 300.1, 500.0: 500.2})
    facts = ticket_facts(TICKETS, events, DAY, SLA, "s", OFFICE).set_index("ticket_id")
    assert (facts.loc["A", "handle_seconds"], facts.loc["B", "handle_seconds"]) == (0.6, 800.3)
    activity = ticket_activity(facts.reset_index(), events, DAY).set_index("channel")
    # The day's handled replies: A's 0.1 s (03-04 11:00, email) and both of B's (chat).
    assert activity.loc["chat", "handle_seconds_sum"] == 800.3
    assert activity.loc["email", "handle_seconds_sum"].sum() == 0.1
