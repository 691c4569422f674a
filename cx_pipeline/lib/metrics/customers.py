"""Per-customer lifetime figures (dim_customers) and the customer health score. Pure pandas.

dim_customers is a daily snapshot carried forward: a day's snapshot is the day
before's plus the day's activity (tickets created, first resolutions, reopens,
survey answers), with the customer's newest record (plan, segment, signup,
churn). So lifetime figures cost one day of input, however long the history.
Customers are keyed by customer_key, the same salted hash as in fct_tickets.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import numpy as np
import pandas as pd

from cx_pipeline.lib.metrics.core import Day, days_covered, ratio, side_by_side
from cx_pipeline.lib.metrics.tickets import hash_ids

COUNTERS = ["tickets", "tickets_resolved", "resolution_minutes_sum", "reopens"]
LAST_ANSWERS = {"nps": ("last_nps", "last_nps_at"), "csat": ("last_csat", "last_csat_at")}
TIMESTAMPS = ("last_ticket_at", "last_nps_at", "last_csat_at")
PROFILE = ("plan", "segment", "signed_up_at", "churned_at")
DIM_COLUMNS = [
    "customer_key", *PROFILE, "tenure_days", "churned", *COUNTERS, "resolution_minutes_mean",
    "last_ticket_at", "last_nps", "last_nps_at", "last_csat", "last_csat_at",
]  # fmt: skip


def day_activity(
    facts: pd.DataFrame, reopens: pd.DataFrame, responses: pd.DataFrame, day: Day, salt: str
) -> pd.DataFrame:
    """Per customer_key, what the day adds: tickets created, first resolutions (count and
    minutes), reopen events, the latest ticket and the latest NPS and CSAT answers.

    ``facts``: the day's fct_tickets rows; ``reopens``: the day's reopened events
    (ticket_id); ``responses``: the day's survey answers (customer_id, survey_type,
    score, submitted_at)."""
    created = facts[day.contains(facts["created_at"])]
    resolved = facts[day.contains(facts["first_resolved_at"])]
    owner = facts.set_index("ticket_id")["customer_key"]
    parts: list[pd.Series | pd.DataFrame] = [
        created.groupby("customer_key").size().rename("tickets"),
        created.groupby("customer_key")["created_at"].max().rename("last_ticket_at"),
        resolved.groupby("customer_key").size().rename("tickets_resolved"),
        resolved.groupby("customer_key")["first_resolution_minutes"]
        .sum()
        .rename("resolution_minutes_sum"),
        reopens["ticket_id"].map(owner).value_counts().rename("reopens"),
    ]
    answers = responses.assign(customer_key=hash_ids(responses["customer_id"], salt))
    answers = answers.sort_values("submitted_at", kind="stable")
    for kind, (score, at) in LAST_ANSWERS.items():
        latest = answers[answers["survey_type"] == kind].drop_duplicates(
            "customer_key", keep="last"
        )
        parts.append(latest.set_index("customer_key")[["score", "submitted_at"]]
                     .set_axis([score, at], axis=1))  # fmt: skip
    activity = side_by_side(parts, pd.Index([], name="customer_key", dtype="str"))
    activity = activity.reindex(columns=[*COUNTERS, "last_ticket_at", *_answer_columns()])
    activity[COUNTERS] = activity[COUNTERS].fillna(0)
    return activity.rename_axis("customer_key")


def _answer_columns() -> list[str]:
    return [column for pair in LAST_ANSWERS.values() for column in pair]


def update_snapshot(
    previous: pd.DataFrame, activity: pd.DataFrame, customers: pd.DataFrame, day: Day, salt: str
) -> pd.DataFrame:
    """The day's dim_customers: the previous snapshot plus the day's activity, with each
    customer's newest record. ``customers``: customer_id and PROFILE columns."""
    before = previous.set_index("customer_key")
    keys = before.index.union(activity.index)
    counters = before.reindex(keys)[COUNTERS].fillna(0) + activity.reindex(keys)[COUNTERS].fillna(0)
    snapshot = counters.copy()
    for column in ["last_ticket_at", *_answer_columns()]:
        # The day's value where it has one, else the one carried forward.
        snapshot[column] = (
            activity[column].reindex(keys).combine_first(before[column].reindex(keys))
            if len(before)
            else activity[column].reindex(keys)
        )
    for column in TIMESTAMPS:
        snapshot[column] = pd.to_datetime(snapshot[column], utc=True).dt.as_unit("us")
    snapshot[["last_nps", "last_csat"]] = snapshot[["last_nps", "last_csat"]].astype("float64")
    profile = customers.assign(customer_key=hash_ids(customers["customer_id"], salt))
    profile = profile.set_index("customer_key")[list(PROFILE)]
    snapshot = snapshot.reindex(snapshot.index.union(profile.index)).join(profile)
    snapshot[COUNTERS] = snapshot[COUNTERS].fillna(0)
    snapshot = snapshot.astype(dict.fromkeys(["tickets", "tickets_resolved", "reopens"], "int64"))
    snapshot["resolution_minutes_mean"] = ratio(
        snapshot["resolution_minutes_sum"], snapshot["tickets_resolved"]
    )
    snapshot["tenure_days"] = (day.end - snapshot["signed_up_at"]).dt.total_seconds() / 86400
    snapshot["churned"] = (snapshot["churned_at"] < day.end).fillna(False).astype("bool")
    return snapshot.reset_index(names="customer_key")[DIM_COLUMNS].sort_values(
        "customer_key", ignore_index=True
    )


# --- agg_daily_customer_health ----------------------------------------------------

COMPONENTS = ("tenure", "plan", "ticket_volume", "satisfaction", "reopens", "contact_recency")
DEFAULT_WEIGHTS = {
    "tenure": 0.15, "plan": 0.15, "ticket_volume": 0.15, "satisfaction": 0.30,
    "reopens": 0.15, "contact_recency": 0.10,
}  # fmt: skip
DEFAULT_PLAN_SCORES = {"free": 0.0, "starter": 0.4, "pro": 0.7, "enterprise": 1.0}
TENURE_FULL_DAYS = 365  # a year's tenure scores 1
VOLUME_WINDOW_DAYS = 30  # ticket volume counts tickets created in the trailing 30 days
VOLUME_ZERO_TICKETS = 5  # 5+ tickets in the last 30 days scores 0
RECENCY_FULL_DAYS = 90  # no ticket for 90 days scores 1
NEUTRAL = 0.5  # a component with nothing to go on (unknown plan, never surveyed)
RISK_BANDS = ((40.0, "at_risk"), (70.0, "watch"))  # below 40: at risk; below 70: watch


def health(
    snapshot: pd.DataFrame,
    tickets_30d: pd.Series,
    day: Day,
    weights: Mapping[str, float],
    plan_scores: Mapping[str, float],
    first_day: dt.date | None = None,
) -> pd.DataFrame:
    """Health score 0-100 of every active customer at the end of ``day``, with each
    component (0 = worst, 1 = best) beside it. ``tickets_30d``: tickets created in the
    trailing 30 days per customer_key; ``first_day``, the pipeline's first day, bounds the
    days that window covers."""
    active = snapshot[~snapshot["churned"] & (snapshot["signed_up_at"] < day.end)]
    rows = active[["customer_key", "plan", "segment"]].copy()
    recent = active["customer_key"].map(tickets_30d).fillna(0)
    days_since = (day.end - active["last_ticket_at"]).dt.total_seconds() / 86400
    satisfaction = _latest_satisfaction(active)
    rows["tickets_30d"] = recent.astype("int64")
    rows["days_covered_30d"] = days_covered(VOLUME_WINDOW_DAYS, day.date, first_day)
    scores = {
        "tenure": (active["tenure_days"] / TENURE_FULL_DAYS).clip(0, 1),
        "plan": active["plan"].map(dict(plan_scores)).astype("float64").fillna(NEUTRAL),
        "ticket_volume": 1 - (recent / VOLUME_ZERO_TICKETS).clip(0, 1),
        "satisfaction": satisfaction.fillna(NEUTRAL),
        "reopens": 1 - ratio(active["reopens"], active["tickets"]).clip(0, 1).fillna(0),
        "contact_recency": (days_since / RECENCY_FULL_DAYS).clip(0, 1).fillna(1.0),
    }
    total = sum(weights.get(name, 0.0) for name in COMPONENTS)
    rows["health_score"] = (
        100 * sum(weights.get(name, 0.0) * scores[name] for name in COMPONENTS) / total
    )
    for name in COMPONENTS:
        rows[f"{name}_score"] = scores[name].astype("float64")
    rows["risk_band"] = np.select(
        [rows["health_score"] < limit for limit, _ in RISK_BANDS],
        [band for _, band in RISK_BANDS],
        "healthy",
    )
    return rows.astype({"risk_band": "str"}).sort_values("customer_key", ignore_index=True)


def _latest_satisfaction(customers: pd.DataFrame) -> pd.Series:
    """The newer of the last NPS (0-10 -> 0-1) and last CSAT (1-5 -> 0-1); empty if neither."""
    nps = customers["last_nps"] / 10
    csat = (customers["last_csat"] - 1) / 4
    use_csat = (customers["last_csat_at"] > customers["last_nps_at"]).fillna(False) | nps.isna()
    return csat.where(use_csat, nps)
