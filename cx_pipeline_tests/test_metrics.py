"""Metric maths on small hand-made frames; every expected value is worked out by hand."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from cx_pipeline.lib.metrics import core
from cx_pipeline.lib.metrics.business_hours import ALWAYS_OPEN, BusinessSchedule
from cx_pipeline.lib.metrics.core import Day


def ts(text: str | None) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC") if text else pd.NaT


def utc(values: list[str | None]) -> pd.Series:
    return pd.Series([ts(v) for v in values], dtype="datetime64[us, UTC]")


def tickets_frame(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    ids, created, channel, priority = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "ticket_id": pd.Series(ids, dtype="str"),
            "created_at": utc(list(created)),
            "channel": pd.Series(channel, dtype="str"),
            "priority": pd.Series(priority, dtype="str"),
        }
    )


def events_frame(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    ids, at, kind = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "ticket_id": pd.Series(ids, dtype="str"),
            "event_at": utc(list(at)),
            "event_type": pd.Series(kind, dtype="str"),
        }
    )


# --- resolution and first response time ---------------------------------------

TICKETS = tickets_frame(
    [
        ("A", "2026-03-01 09:00", "email", "high"),  # created D-3, solved on D
        ("B", "2026-03-04 08:00", "email", "high"),
        ("C", "2026-03-04 10:00", "email", "high"),
        ("D", "2026-03-02 12:00", "chat", "low"),  # solved before D, reopened, solved on D
        ("E", "2026-03-03 23:00", "chat", "low"),  # first reply after midnight
    ]
)
EVENTS = events_frame(
    [
        ("A", "2026-03-01 10:00", "agent_reply"),
        ("A", "2026-03-04 09:00", "solved"),  # 3 days = 4320 min
        ("B", "2026-03-04 08:20", "agent_reply"),  # 20 min
        ("B", "2026-03-04 10:00", "solved"),  # 120 min
        ("B", "2026-03-04 12:00", "closed"),  # not a first resolution
        ("C", "2026-03-04 10:50", "agent_reply"),  # 50 min
        ("C", "2026-03-04 13:00", "closed"),  # closed without solve: 180 min
        ("D", "2026-03-02 12:30", "agent_reply"),
        ("D", "2026-03-02 15:00", "solved"),
        ("D", "2026-03-04 09:00", "reopened"),
        ("D", "2026-03-04 11:00", "solved"),  # second solve: not counted again
        ("E", "2026-03-04 01:00", "agent_reply"),  # 120 min
    ]
)
MARCH_4 = Day(dt.date(2026, 3, 4), "UTC")
ALWAYS = BusinessSchedule.from_settings("UTC", ALWAYS_OPEN)
OFFICE = BusinessSchedule.from_settings(
    "UTC", dict.fromkeys(["mon", "tue", "wed", "thu", "fri"], "09:00-17:00")
)


def test_resolution_time_counts_first_resolution_on_its_day() -> None:
    result = core.resolution_time(TICKETS, EVENTS, MARCH_4, ALWAYS).set_index(
        ["channel", "priority"]
    )
    email = result.loc[("email", "high")]
    # Resolved on 03-04: A 4320, B 120, C 180 minutes.
    assert email["tickets_resolved"] == 3
    assert email["resolution_minutes_sum"] == pytest.approx(4620)
    assert email["resolution_minutes_mean"] == pytest.approx(1540)
    assert email["resolution_minutes_median"] == pytest.approx(180)
    # p90, linear: sorted [120, 180, 4320], position 0.9 * 2 = 1.8 -> 180 + 0.8 * 4140
    assert email["resolution_minutes_p90"] == pytest.approx(3492)
    # First replies on 03-04: B 20, C 50 (A's was on 03-01).
    assert email["tickets_first_responded"] == 2
    assert email["first_response_minutes_sum"] == pytest.approx(70)
    assert email["first_response_minutes_median"] == pytest.approx(35)
    assert email["first_response_minutes_p90"] == pytest.approx(47)
    chat = result.loc[("chat", "low")]
    # D's solve on 03-04 is its second; E was first answered after midnight: 120 min.
    assert chat["tickets_resolved"] == 0
    assert chat["resolution_minutes_sum"] == 0
    assert np.isnan(chat["resolution_minutes_mean"])
    assert chat["tickets_first_responded"] == 1
    assert chat["first_response_minutes_mean"] == pytest.approx(120)
    # Around the clock, business minutes are calendar minutes.
    for figure in ("resolution", "first_response"):
        for stat in ("sum", "median", "p90"):
            assert email[f"{figure}_business_minutes_{stat}"] == pytest.approx(
                email[f"{figure}_minutes_{stat}"]
            )


def test_resolution_time_in_business_minutes() -> None:
    # Office hours Mon-Fri 09-17 UTC; 2026-03-04 is a Wednesday.
    result = core.resolution_time(TICKETS, EVENTS, MARCH_4, OFFICE)
    email = result.set_index(["channel", "priority"]).loc[("email", "high")]
    # A: created Sun 03-01 09:00, solved Wed 09:00 -> Mon 480 + Tue 480 = 960.
    # B: created Wed 08:00, solved 10:00 -> only 09:00-10:00 counts: 60.
    # C: created Wed 10:00, closed 13:00 -> 180, all inside office hours.
    assert email["resolution_business_minutes_sum"] == pytest.approx(960 + 60 + 180)
    assert email["resolution_business_minutes_median"] == pytest.approx(180)
    # First replies: B 08:00 -> 08:20 is before opening: 0; C 10:00 -> 10:50: 50.
    assert email["first_response_business_minutes_sum"] == pytest.approx(50)
    # E: created Tue 23:00, answered Wed 01:00, both outside hours: 0 business minutes.
    chat = result.set_index(["channel", "priority"]).loc[("chat", "low")]
    assert chat["first_response_business_minutes_mean"] == 0


def test_resolution_time_of_a_day_without_events_is_empty() -> None:
    quiet = Day(dt.date(2026, 3, 10), "UTC")
    assert core.resolution_time(TICKETS, EVENTS, quiet, ALWAYS).empty


def test_day_boundaries_follow_the_reporting_zone() -> None:
    # 2026-03-04 in New York (UTC-5) runs 05:00 UTC .. 05:00 UTC next day:
    # E's 01:00 UTC reply belongs to 03-03 there, C's and B's to 03-04.
    new_york = Day(dt.date(2026, 3, 4), "America/New_York")
    assert new_york.start == ts("2026-03-04 05:00")
    result = core.resolution_time(TICKETS, EVENTS, new_york, ALWAYS).set_index(
        ["channel", "priority"]
    )
    assert ("chat", "low") not in result.index
    assert result.loc[("email", "high"), "tickets_first_responded"] == 2


def test_day_across_daylight_saving_has_23_hours() -> None:
    spring = Day(dt.date(2026, 3, 29), "Europe/Berlin")
    assert spring.end - spring.start == pd.Timedelta(hours=23)


@pytest.mark.parametrize("in_duckdb_from", [0, 100_000], ids=["duckdb", "pandas"])
def test_latest_versions_keeps_the_newest_arrival_of_each_key(in_duckdb_from: int) -> None:
    # T1 arrived on the 1st and again on the 3rd: the 3rd's row wins. T2 twice on the
    # 2nd (a resent line): the later row wins. T3 once. A missing id is a key of its own.
    day = dt.date
    rows = pd.DataFrame(
        {
            "ticket_id": pd.Series(["T1", "T2", "T3", "T2", None, "T1"], dtype="str"),
            "topic": pd.Series(["old", "first", "only", "second", "none", "new"], dtype="str"),
            "date": [day(2026, 3, 1), day(2026, 3, 2), day(2026, 3, 1), day(2026, 3, 2),
                     day(2026, 3, 2), day(2026, 3, 3)],
        }
    )  # fmt: skip
    newest = core.latest_versions(rows, ["ticket_id"], in_duckdb_from=in_duckdb_from)
    # Arrival order: the 1st's T3, the 2nd's T2 (second) and missing id, the 3rd's T1.
    assert newest["ticket_id"].fillna("-").tolist() == ["T3", "T2", "-", "T1"]
    assert newest["topic"].tolist() == ["only", "second", "none", "new"]
    assert newest["topic"].dtype == rows["topic"].dtype


# --- tickets by topic -------------------------------------------------------


def topic_tickets(rows: list[tuple[str, str]]) -> pd.DataFrame:
    created, topics = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "ticket_id": pd.Series([f"T{i}" for i in range(len(rows))], dtype="str"),
            "created_at": utc(list(created)),
            "topic": pd.Series(topics, dtype="str"),
        }
    )


def test_tickets_by_topic_share_and_change_against_previous_seven_days() -> None:
    tickets = topic_tickets(
        [
            ("2026-03-10 09:00", "billing"),
            ("2026-03-10 10:00", "billing"),
            ("2026-03-10 11:00", "login"),
            ("2026-03-10 12:00", "доставка"),
            ("2026-03-03 09:00", "billing"),  # previous 7 days: 03-03 .. 03-09
            ("2026-03-05 09:00", "billing"),
            ("2026-03-09 23:59", "login"),
            ("2026-03-02 09:00", "login"),  # 8 days back: outside the window
        ]
    )
    result = core.tickets_by_topic(tickets, Day(dt.date(2026, 3, 10), "UTC"), dt.date(2026, 1, 1))
    result = result.set_index("topic")
    assert result["tickets_created"].to_dict() == {"billing": 2, "login": 1, "доставка": 1}
    assert (result["tickets_created_all_topics"] == 4).all()
    assert result.loc["billing", "share_of_day"] == pytest.approx(0.5)
    assert (result["prev_7d_days"] == 7).all()
    # billing: 2 tickets in 7 days -> mean 2/7; change 2 - 2/7 = 12/7; pct (12/7)/(2/7) = 6
    assert result.loc["billing", "prev_7d_mean"] == pytest.approx(2 / 7)
    assert result.loc["billing", "change_vs_prev_7d"] == pytest.approx(12 / 7)
    assert result.loc["billing", "change_rate_vs_prev_7d"] == pytest.approx(6)
    # A new topic: mean 0, change +1, no percentage.
    assert result.loc["доставка", "prev_7d_mean"] == 0
    assert np.isnan(result.loc["доставка", "change_rate_vs_prev_7d"])


def test_topic_absent_today_is_reported_with_zero() -> None:
    tickets = topic_tickets([("2026-03-09 09:00", "login"), ("2026-03-10 09:00", "billing")])
    result = core.tickets_by_topic(tickets, Day(dt.date(2026, 3, 10), "UTC"), dt.date(2026, 1, 1))
    login = result.set_index("topic").loc["login"]
    assert login["tickets_created"] == 0
    assert login["change_vs_prev_7d"] == pytest.approx(-1 / 7)
    assert login["change_rate_vs_prev_7d"] == pytest.approx(-1)


def test_previous_days_before_the_pipeline_start_are_not_counted() -> None:
    tickets = topic_tickets([("2026-01-01 09:00", "billing"), ("2026-01-03 09:00", "billing")])
    result = core.tickets_by_topic(tickets, Day(dt.date(2026, 1, 3), "UTC"), dt.date(2026, 1, 1))
    # Only 01-01 and 01-02 precede 01-03 inside the range: mean 1 / 2.
    assert result.loc[0, "prev_7d_days"] == 2
    assert result.loc[0, "prev_7d_mean"] == pytest.approx(0.5)
    first = core.tickets_by_topic(tickets, Day(dt.date(2026, 1, 1), "UTC"), dt.date(2026, 1, 1))
    assert first.loc[0, "prev_7d_days"] == 0
    assert np.isnan(first.loc[0, "prev_7d_mean"])


# --- churn ------------------------------------------------------------------


def customers_frame(rows: list[tuple[str, str, str | None]]) -> pd.DataFrame:
    ids, signed, churned = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "customer_id": pd.Series(ids, dtype="str"),
            "signed_up_at": utc(list(signed)),
            "churned_at": utc(list(churned)),
        }
    )


CUSTOMERS = customers_frame(
    [
        ("A", "2025-11-15 10:00", None),
        ("B", "2026-02-20 09:00", "2026-03-10 15:00"),  # active at start, churns on the day
        ("C", "2026-02-05 12:00", "2026-02-28 23:00"),  # churned earlier
        ("D", "2026-03-10 08:00", None),  # new
        ("E", "2026-03-10 10:00", "2026-03-10 18:00"),  # new and churned the same day
        ("F", "2026-03-10 00:00", None),  # signs up at midnight exactly: new on 03-10
        ("G", "2026-01-01 00:00", "2026-03-10 00:00"),  # churns at midnight: churned on 03-10
    ]
)


def test_churn_of_a_day() -> None:
    row = core.churn(CUSTOMERS, Day(dt.date(2026, 3, 10), "UTC")).iloc[0]
    assert row["customers_at_start"] == 3  # A, B, G
    assert row["customers_new"] == 3  # D, E, F
    assert row["customers_churned"] == 3  # B, E, G
    assert row["customers_at_end"] == 3  # A, D, F
    assert row["churn_rate"] == pytest.approx(1.0)
    # 30-day window 02-09 .. 03-10: at its start A, C, G (B signed up 02-20).
    assert row["customers_at_start_30d"] == 3
    assert row["customers_new_30d"] == 4  # B, D, E, F
    assert row["customers_churned_30d"] == 4  # C, B, E, G
    assert row["churn_rate_30d"] == pytest.approx(4 / 3)
    assert row["days_covered_30d"] == 30  # no first day given: the whole window


def test_churn_near_the_first_day_says_how_many_days_its_window_covers() -> None:
    # The pipeline started 03-01: the 30-day window of 03-10 has 10 days of drops.
    day = Day(dt.date(2026, 3, 10), "UTC")
    assert core.churn(CUSTOMERS, day, dt.date(2026, 3, 1)).iloc[0]["days_covered_30d"] == 10
    customers = CUSTOMERS.assign(plan="pro", segment="smb")
    by_segment = core.churn_by_segment(customers, day, dt.date(2026, 3, 1))
    assert set(by_segment["days_covered_30d"]) == {10}


def test_churn_with_no_customers_has_no_rate() -> None:
    row = core.churn(
        customers_frame([("A", "2026-03-10 10:00", None)]), Day(dt.date(2026, 3, 10), "UTC")
    )
    assert row.loc[0, "customers_at_start"] == 0
    assert np.isnan(row.loc[0, "churn_rate"])


def test_churn_by_plan_and_tenure_band() -> None:
    customers = customers_frame(
        [
            ("A", "2025-03-10 00:00", None),  # 12 whole months at 03-10 00:00
            ("B", "2025-03-10 00:01", "2026-03-10 15:00"),  # 11 months and a bit; churns
            ("C", "2019-01-31 10:00", "2026-03-10 09:00"),  # 85 months: the last band
            ("D", "2026-03-10 08:00", None),  # new today: first band, not at the start
        ]
    ).assign(plan=["pro", "pro", None, "free"], segment="smb")
    rows = core.churn_by_segment(customers, Day(dt.date(2026, 3, 10), "UTC"))
    got = {
        (r.breakdown, r.breakdown_value): (
            r.customers_at_start, r.customers_new, r.customers_churned, r.churn_rate
        )
        for r in rows.itertuples()
    }  # fmt: skip
    assert got == {
        ("plan", "(unknown)"): (1, 0, 1, 1.0),
        ("plan", "free"): (0, 1, 0, pytest.approx(np.nan, nan_ok=True)),
        ("plan", "pro"): (2, 0, 1, 0.5),
        ("segment", "smb"): (3, 1, 2, pytest.approx(2 / 3)),
        ("tenure_band", "00-11 months"): (1, 1, 1, 1.0),  # B (churned), D (new)
        ("tenure_band", "12-23 months"): (1, 0, 0, 0.0),  # A
        ("tenure_band", "72+ months"): (1, 0, 1, 1.0),  # C
    }


def test_tenure_bands_count_whole_calendar_months() -> None:
    signups = utc(["2025-12-31 00:00", "2025-02-28 00:00", "2025-01-31 00:00", None])
    # From Dec 31 one month is complete on Jan 31, from Jan 31 on Feb 28 (clamped).
    bands = core.tenure_bands(signups, ts("2026-01-31 00:00"), "UTC")
    assert list(bands) == ["00-11 months", "00-11 months", "12-23 months", "00-11 months"]
    assert list(core.tenure_bands(utc(["2025-01-31 00:00"]), ts("2026-02-28"), "UTC")) == [
        "12-23 months"
    ]


# --- retention cohorts ------------------------------------------------------


def test_retention_cohort_triangle() -> None:
    customers = customers_frame(
        [
            ("A", "2026-01-05 10:00", None),
            ("B", "2026-01-20 10:00", "2026-02-10 10:00"),  # gone by the end of February
            ("C", "2026-01-25 10:00", "2026-03-20 10:00"),  # churns after the as-of day
            ("D", "2026-02-01 00:00", "2026-02-01 12:00"),  # gone within its signup month
            ("E", "2026-02-15 10:00", None),
            ("F", "2026-03-02 10:00", None),
            ("G", "2026-03-12 10:00", None),  # signs up after the as-of day: not counted
        ]
    )
    result = core.retention_cohorts(customers, Day(dt.date(2026, 3, 10), "UTC"))
    cells = {
        (row.cohort_month.isoformat(), row.months_since_signup): (
            row.cohort_customers,
            row.customers_active,
        )
        for row in result.itertuples()
    }
    assert cells == {
        ("2026-01-01", 0): (3, 3),  # end of January: A, B, C
        ("2026-01-01", 1): (3, 2),  # end of February: B gone
        ("2026-01-01", 2): (3, 2),  # as of 03-10: C still active
        ("2026-02-01", 0): (2, 1),  # D gone in February
        ("2026-02-01", 1): (2, 1),
        ("2026-03-01", 0): (1, 1),
    }
    share = result.set_index(["months_since_signup"])["share_active"]
    assert share.iloc[1] == pytest.approx(2 / 3)


def test_calendar_rows_follow_iso_weeks_across_new_year() -> None:
    # 2026-01-01 is a Thursday in ISO week 1 of 2026, which starts on Monday 2025-12-29;
    # 2027-01-01 is a Friday in week 53 of 2026 (a year that starts on a Thursday has 53).
    new_year = core.calendar_row(dt.date(2026, 1, 1), 0.0).iloc[0]
    assert (new_year["iso_year"], new_year["iso_week"], new_year["weekday"]) == (2026, 1, 4)
    assert new_year["week_start"] == dt.date(2025, 12, 29)
    assert (new_year["quarter"], new_year["weekday_name"]) == (1, "Thursday")
    assert not new_year["is_working_day"]  # a holiday: no business minutes
    next_year = core.calendar_row(dt.date(2027, 1, 1), 480.0).iloc[0]
    assert (next_year["iso_year"], next_year["iso_week"]) == (2026, 53)
    assert next_year["week_start"] == dt.date(2026, 12, 28)
    assert next_year["is_working_day"] and not next_year["is_weekend"]
    assert next_year["month_start"] == dt.date(2027, 1, 1)
