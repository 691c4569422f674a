"""dim_customers carried over two days and the health score; values worked out by hand."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from cx_pipeline.lib.metrics.core import Day
from cx_pipeline.lib.metrics.customers import (
    DEFAULT_PLAN_SCORES,
    DEFAULT_WEIGHTS,
    day_activity,
    health,
    update_snapshot,
)
from cx_pipeline.lib.metrics.tickets import hash_ids
from cx_pipeline.lib.store.tables import DIM_CUSTOMERS

SALT = "s"
DAY_1 = Day(dt.date(2026, 3, 9), "UTC")
DAY_2 = Day(dt.date(2026, 3, 10), "UTC")


def utc(*values: str | None) -> pd.Series:
    return pd.Series(pd.to_datetime(list(values), utc=True)).astype("datetime64[us, UTC]")


def key(customer_id: str) -> str:
    return str(hash_ids(pd.Series([customer_id]), SALT).iloc[0])


def facts(rows: list[tuple[str, str, str, str | None, float | None]]) -> pd.DataFrame:
    ids, customers, created, resolved, minutes = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "ticket_id": list(ids),
            "customer_key": [key(c) for c in customers],
            "created_at": utc(*created),
            "first_resolved_at": utc(*resolved),
            "first_resolution_minutes": pd.Series(minutes, dtype="float64"),
        }
    )


def answers(rows: list[tuple[str, str, float, str]]) -> pd.DataFrame:
    customers, kinds, scores, at = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "customer_id": list(customers),
            "survey_type": list(kinds),
            "score": list(scores),
            "submitted_at": utc(*at),
        }
    )


PROFILES = pd.DataFrame(
    {
        "customer_id": ["C1", "C2", "C3"],
        "plan": ["pro", "free", "enterprise"],
        "segment": ["smb", "smb", "enterprise"],
        "signed_up_at": utc("2025-03-09 00:00", "2026-03-09 00:00", "2026-01-01 00:00"),
        "churned_at": utc(None, None, "2026-03-09 12:00"),
    }
)
NO_REOPENS = pd.DataFrame({"ticket_id": pd.Series([], dtype="str")})
EMPTY = DIM_CUSTOMERS.arrow_schema.empty_table().to_pandas()


@pytest.fixture(scope="module")
def day_1() -> pd.DataFrame:
    activity = day_activity(
        facts(
            [
                ("T1", "C1", "2026-03-09 09:00", "2026-03-09 11:00", 120.0),
                ("T2", "C2", "2026-03-09 10:00", None, None),
            ]
        ),
        NO_REOPENS,
        answers([("C1", "nps", 9.0, "2026-03-09 12:00"), ("C2", "csat", 2.0, "2026-03-09 13:00")]),
        DAY_1,
        SALT,
    )
    return update_snapshot(EMPTY, activity, PROFILES, DAY_1, SALT)


@pytest.fixture(scope="module")
def day_2(day_1: pd.DataFrame) -> pd.DataFrame:
    activity = day_activity(
        facts(
            [
                # T1 (created yesterday) is touched today: reopened; not a new ticket.
                ("T1", "C1", "2026-03-09 09:00", "2026-03-09 11:00", 120.0),
                ("T3", "C1", "2026-03-10 08:00", "2026-03-10 09:00", 60.0),
            ]
        ),
        pd.DataFrame({"ticket_id": ["T1"]}),
        answers([("C1", "csat", 5.0, "2026-03-10 12:00"), ("C1", "csat", 4.0, "2026-03-10 14:00")]),
        DAY_2,
        SALT,
    )
    return update_snapshot(day_1, activity, PROFILES, DAY_2, SALT)


def test_first_day_snapshot(day_1: pd.DataFrame) -> None:
    rows = day_1.set_index("customer_key")
    c1 = rows.loc[key("C1")]
    assert (c1["tickets"], c1["tickets_resolved"], c1["resolution_minutes_mean"]) == (1, 1, 120)
    assert c1["last_nps"] == 9 and pd.isna(c1["last_csat"])
    assert c1["tenure_days"] == 366  # 2025-03-09 to the end of 2026-03-09
    c2 = rows.loc[key("C2")]
    assert (c2["tickets"], c2["tickets_resolved"]) == (1, 0)
    assert np.isnan(c2["resolution_minutes_mean"]) and c2["last_csat"] == 2
    c3 = rows.loc[key("C3")]  # no tickets, churned at noon
    assert c3["tickets"] == 0 and c3["churned"]
    DIM_CUSTOMERS.to_arrow(day_1)  # valid against the table's schema


def test_lifetime_figures_carry_forward(day_2: pd.DataFrame) -> None:
    rows = day_2.set_index("customer_key")
    c1 = rows.loc[key("C1")]
    # T1 (yesterday) + T3 (today); resolutions 120 + 60; one reopen today.
    assert (c1["tickets"], c1["tickets_resolved"], c1["reopens"]) == (2, 2, 1)
    assert c1["resolution_minutes_mean"] == 90
    assert c1["last_ticket_at"] == pd.Timestamp("2026-03-10 08:00", tz="UTC")
    assert c1["last_nps"] == 9  # carried from yesterday
    assert c1["last_csat"] == 4  # the later of today's two answers
    c2 = rows.loc[key("C2")]  # nothing new today
    assert (c2["tickets"], c2["last_csat"]) == (1, 2)
    assert len(rows) == 3


def test_health_score_components(day_2: pd.DataFrame) -> None:
    tickets_30d = pd.Series({key("C1"): 2, key("C2"): 1})
    scores = health(day_2, tickets_30d, DAY_2, DEFAULT_WEIGHTS, DEFAULT_PLAN_SCORES)
    rows = scores.set_index("customer_key")
    assert key("C3") not in rows.index  # churned customers are not scored
    assert set(rows["days_covered_30d"]) == {30}
    started_today = health(
        day_2, tickets_30d, DAY_2, DEFAULT_WEIGHTS, DEFAULT_PLAN_SCORES, DAY_2.date
    )
    assert set(started_today["days_covered_30d"]) == {1}  # tickets_30d then counts one day
    c1 = rows.loc[key("C1")]
    # tenure 367 d -> 1; pro 0.7; 2 tickets -> 1 - 2/5 = 0.6; CSAT 4 (newer than the
    # NPS) -> 3/4; 1 reopen of 2 tickets -> 0.5; last ticket 16 h before the day's end.
    recency = (16 / 24) / 90
    assert (c1["tenure_score"], c1["plan_score"]) == (1, 0.7)
    assert c1["ticket_volume_score"] == pytest.approx(0.6)
    assert (c1["satisfaction_score"], c1["reopens_score"]) == (0.75, 0.5)
    assert c1["contact_recency_score"] == pytest.approx(recency)
    expected = 0.15 * 1 + 0.15 * 0.7 + 0.15 * 0.6 + 0.30 * 0.75 + 0.15 * 0.5 + 0.10 * recency
    assert c1["health_score"] == pytest.approx(100 * expected)  # 64.6
    assert c1["risk_band"] == "watch"
    c2 = rows.loc[key("C2")]
    # 2 days' tenure; free 0; 1 ticket -> 0.8; CSAT 2 -> 0.25; no reopens -> 1;
    # last ticket 38 h before the day's end.
    expected = 0.15 * (2 / 365) + 0 + 0.15 * 0.8 + 0.30 * 0.25 + 0.15 * 1 + 0.10 * ((38 / 24) / 90)
    assert c2["health_score"] == pytest.approx(100 * expected)  # 34.8
    assert c2["risk_band"] == "at_risk"


def test_health_weights_are_settings(day_2: pd.DataFrame) -> None:
    only_satisfaction = {"satisfaction": 1.0}
    scores = health(day_2, pd.Series(dtype="int64"), DAY_2, only_satisfaction, {})
    rows = scores.set_index("customer_key")
    assert rows.loc[key("C1"), "health_score"] == 75  # CSAT 4 -> 0.75
    assert rows.loc[key("C1"), "plan_score"] == 0.5  # a plan not listed: neutral
