"""Repeat contacts, channel mix and tickets solved per working day; values worked out by hand."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from cx_pipeline.lib.metrics.business_hours import BusinessSchedule
from cx_pipeline.lib.metrics.contacts import channel_mix, repeat_contacts
from cx_pipeline.lib.metrics.core import Day
from cx_pipeline.lib.metrics.tickets import workload

DAY = Day(dt.date(2026, 3, 10), "UTC")  # a Tuesday


def ticket_rows(rows: list[tuple[str, str, str, str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(
        rows, columns=["ticket_id", "customer_id", "created_at", "channel", "topic"]
    )
    return frame.assign(created_at=pd.to_datetime(frame["created_at"], utc=True).dt.as_unit("us"))


TICKETS = ticket_rows(
    [
        ("T1", "C1", "2026-03-04 10:00", "email", "billing"),  # 6 days before C1's next
        ("T2", "C1", "2026-03-10 09:00", "chat", "billing"),  # repeat
        ("T3", "C2", "2026-03-01 10:00", "email", "billing"),  # 9 days before: too long ago
        ("T4", "C2", "2026-03-10 11:00", "email", "billing"),  # not a repeat
        ("T5", "C3", "2026-03-09 10:00", "phone", "login"),
        ("T6", "C3", "2026-03-10 10:00", "phone", "billing"),  # another topic: not a repeat
        ("T7", "C4", "2026-03-10 08:00", "chat", "shipping"),
        ("T8", "C4", "2026-03-10 15:00", "email", "shipping"),  # same-day repeat
        ("T9", "C5", "2026-03-10 12:00", "web", "login"),
    ]
)


def test_repeat_contacts_per_topic_and_overall() -> None:
    result = repeat_contacts(TICKETS, DAY, window_days=7).set_index("topic")
    billing = result.loc["billing"]  # C1 (repeat), C2, C3
    assert (billing["customers_with_ticket"], billing["customers_with_repeat"]) == (3, 1)
    assert billing["repeat_contact_rate"] == pytest.approx(1 / 3)
    assert billing["next_issue_avoidance_rate"] == pytest.approx(2 / 3)
    # C4 counts once though both tickets were on the day.
    assert tuple(result.loc["shipping", ["customers_with_ticket", "customers_with_repeat"]]) == (
        1,
        1,
    )
    assert result.loc["login", "repeat_contact_rate"] == 0  # C5; C3's login was yesterday
    everyone = result.loc["(all)"]  # C1..C5; C1 and C4 repeated
    assert (everyone["customers_with_ticket"], everyone["customers_with_repeat"]) == (5, 2)
    assert everyone["repeat_contact_rate"] == pytest.approx(0.4)
    assert set(result["window_days"]) == {7}


def test_a_longer_window_catches_older_tickets() -> None:
    result = repeat_contacts(TICKETS, DAY, window_days=10).set_index("topic")
    assert result.loc["billing", "customers_with_repeat"] == 2  # now C2's 03-01 ticket too


def test_repeat_edges_exactly_the_window_and_the_same_instant() -> None:
    tickets = pd.DataFrame(
        [
            ("A1", "CA", "2026-03-03 10:00", "email", "billing"),
            ("A2", "CA", "2026-03-10 10:00", "email", "billing"),  # exactly 7 days: repeats
            ("B1", "CB", "2026-03-10 10:00", "email", "billing"),
            ("B2", "CB", "2026-03-10 10:00", "chat", "billing"),  # the same instant: no
        ],
        columns=["ticket_id", "customer_id", "created_at", "channel", "topic"],
    ).assign(created_at=lambda f: pd.to_datetime(f["created_at"], utc=True).dt.as_unit("us"))
    billing = repeat_contacts(tickets, DAY, window_days=7).set_index("topic").loc["billing"]
    assert (billing["customers_with_ticket"], billing["customers_with_repeat"]) == (2, 1)


def test_no_tickets_give_no_rows() -> None:
    assert repeat_contacts(TICKETS, Day(dt.date(2026, 4, 1), "UTC"), 7).empty


def test_channel_mix_for_the_day() -> None:
    mix = channel_mix(TICKETS, DAY).set_index(["window_days", "channel"]).loc[1]
    # The day's 6 tickets: chat T2 T7, email T4 T8, phone T6, web T9; 5 customers.
    assert mix["tickets"].to_dict() == {"chat": 2, "email": 2, "phone": 1, "web": 1}
    assert mix["customers"].to_dict() == {"chat": 2, "email": 2, "phone": 1, "web": 1}
    assert mix.loc["chat", "share_of_tickets"] == pytest.approx(2 / 6)
    assert mix.loc["chat", "share_of_customers"] == pytest.approx(2 / 5)
    # C4 used chat and email once each: the tie goes to the latest (email, 15:00).
    assert mix["customers_preferring"].to_dict() == {"chat": 1, "email": 2, "phone": 1, "web": 1}
    assert mix["share_preferring"].sum() == pytest.approx(1)


def test_channel_mix_over_30_days() -> None:
    mix = channel_mix(TICKETS, DAY).set_index(["window_days", "channel"]).loc[30]
    # All 9 tickets: email T1 T3 T4 T8, chat T2 T7, phone T5 T6, web T9.
    assert mix["tickets"].to_dict() == {"chat": 2, "email": 4, "phone": 2, "web": 1}
    assert mix.loc["email", "customers"] == 3  # C1, C2, C4
    assert mix.loc["phone", "share_of_tickets"] == pytest.approx(2 / 9)
    # C1: email 03-04 and chat 03-10 tie -> chat (latest). C4 -> email.
    assert mix["customers_preferring"].to_dict() == {"chat": 1, "email": 2, "phone": 1, "web": 1}


def test_preferred_channel_tied_on_count_and_instant_goes_to_the_first_by_name() -> None:
    # C9 opened a web and an email ticket at the same instant: email comes first by name.
    same_instant = ticket_rows(
        [("T91", "C9", "2026-03-10 09:00", "web", "login"),
         ("T92", "C9", "2026-03-10 09:00", "email", "login")]
    )  # fmt: skip
    mix = channel_mix(same_instant, DAY).set_index(["window_days", "channel"]).loc[1]
    assert mix["customers_preferring"].to_dict() == {"email": 1, "web": 0}


OFFICE = BusinessSchedule.from_settings(
    "UTC", dict.fromkeys(["mon", "tue", "wed", "thu", "fri"], "09:00-17:00"), ["2026-03-11"]
)
ACTIVITY = pd.DataFrame({"tickets_created": [2, 5], "tickets_solved": [3, 4]})


def test_tickets_solved_per_working_day() -> None:
    tuesday = workload(ACTIVITY, DAY, OFFICE).iloc[0]
    assert (tuesday["tickets_solved"], tuesday["working_day"]) == (7, 1)
    assert tuesday["working_minutes"] == 480
    assert tuesday["tickets_solved_per_working_day"] == 7
    for closed in (dt.date(2026, 3, 11), dt.date(2026, 3, 14)):  # a holiday, a Saturday
        row = workload(ACTIVITY, Day(closed, "UTC"), OFFICE).iloc[0]
        assert row["working_day"] == 0 and np.isnan(row["tickets_solved_per_working_day"])


def test_windows_near_the_pipelines_first_day_say_how_many_days_they_cover() -> None:
    # The pipeline starts on 03-05. On 03-10 the 7-day repeat look-back has data for the
    # 5 days 03-05..03-09; the channel mix's 30-day window for 03-05..03-10 (6 days).
    first_day = dt.date(2026, 3, 5)
    repeats = repeat_contacts(TICKETS, DAY, window_days=7, first_day=first_day)
    assert set(repeats["window_days_covered"]) == {5}
    mix = channel_mix(TICKETS, DAY, first_day).groupby("window_days")["window_days_covered"]
    assert mix.unique().to_dict() == {1: [1], 30: [6]}
    # Without a first day (or long after it) a window is whole.
    assert set(repeat_contacts(TICKETS, DAY, window_days=7)["window_days_covered"]) == {7}
