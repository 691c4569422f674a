"""Metric maths: pure pandas functions over staged rows, one per mart table.

Conventions (docs/metrics.md): timestamps are UTC; a "day" is a calendar day in
the reporting time zone, given as its [start, end) instants in UTC; a metric
belongs to the day of the event that completes it; every mean sits beside its
numerator and denominator. Percentiles interpolate linearly (DuckDB's
``quantile_cont``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pandas as pd

from cx_pipeline.lib.metrics.business_hours import BusinessSchedule
from cx_pipeline.lib.metrics.sql import ONE_THREAD_ROWS, last_of_each, query, sql_list

RESOLUTION_EVENTS = ("solved", "closed")
RESPONSE_EVENTS = ("agent_reply",)


@dataclass(frozen=True)
class Day:
    """A calendar day in the reporting time zone, as UTC instants."""

    date: dt.date
    timezone: str

    @property
    def start(self) -> pd.Timestamp:
        return self.shifted(0)

    @property
    def end(self) -> pd.Timestamp:
        return self.shifted(1)

    def shifted(self, days: int) -> pd.Timestamp:
        """Start (midnight local) of the day ``days`` after this one, in UTC."""
        local = pd.Timestamp(self.date + dt.timedelta(days=days)).tz_localize(self.timezone)
        return local.tz_convert("UTC").as_unit("us")

    def contains(self, instants: pd.Series) -> pd.Series:
        return (instants >= self.start) & (instants < self.end)


def local_dates(instants: pd.Series, timezone: str) -> pd.Series:
    """The reporting-zone calendar date of each UTC instant."""
    return instants.dt.tz_convert(timezone).dt.date


def latest_versions(
    rows: pd.DataFrame, key: list[str], in_duckdb_from: int = ONE_THREAD_ROWS
) -> pd.DataFrame:
    """The newest version of each key: the latest arrival ``date`` wins (rows are
    unique per key within one arrival day after staging; on a tie the later row). In
    arrival order, each day's rows in the order they came."""
    newest = last_of_each(rows, key, in_duckdb_from, order_by="date")
    return newest.reset_index(drop=True)


def side_by_side(
    parts: list[pd.Series | pd.DataFrame], empty_index: pd.Index | None = None
) -> pd.DataFrame:
    """Figures keyed alike (a Series or frame each), joined on their index; a frame with
    ``empty_index`` (default none) when no part has rows."""
    filled = [part for part in parts if len(part)]
    return pd.concat(filled, axis=1) if filled else pd.DataFrame(index=empty_index)


# --- agg_daily_resolution_time ----------------------------------------------


def resolution_time(
    tickets: pd.DataFrame, events: pd.DataFrame, day: Day, schedule: BusinessSchedule
) -> pd.DataFrame:
    """First response and first resolution minutes (calendar and business) of the tickets
    completing them on ``day``.

    ``tickets``: ticket_id, created_at, channel, priority (one row per ticket).
    ``events``: ticket_id, event_at, event_type: every event of those tickets up
    to the end of the day, so the first one is known.
    """
    grain = ["channel", "priority"]
    completed = _milestones_on(tickets, events, day)
    result = None
    for count, prefix, _ in MILESTONES:
        done = _durations_completed_on(completed, f"{prefix}_at", day)
        done["business_minutes"] = schedule.minutes_between(
            done["created_at"], done["completed_at"]
        )
        stats = pd.merge(
            _minute_stats(done, grain, f"{prefix}_minutes", "minutes", count),
            _minute_stats(done, grain, f"{prefix}_business_minutes", "business_minutes"),
            on=grain,
        )
        result = stats if result is None else result.merge(stats, on=grain, how="outer")
    assert result is not None
    counts = [count for count, _, _ in MILESTONES]
    sums = [name for name in result.columns if name.endswith("_sum")]
    result[counts] = result[counts].fillna(0).astype("int64")
    result[sums] = result[sums].fillna(0.0)
    return result.sort_values(grain, ignore_index=True)


# (count column, figure prefix, the events that complete it) of agg_daily_resolution_time.
MILESTONES = (
    ("tickets_resolved", "resolution", RESOLUTION_EVENTS),
    ("tickets_first_responded", "first_response", RESPONSE_EVENTS),
)
_FIRST_AT = ", ".join(
    f"min(event_at) FILTER (WHERE event_type IN {sql_list(types)}) AS {prefix}_at"
    for _, prefix, types in MILESTONES
)
_ANY_ON_DAY = " OR ".join(
    f"({prefix}_at >= $day_start AND {prefix}_at < $day_end)" for _, prefix, _ in MILESTONES
)
# Per ticket, the first event of each milestone (the first of all its events, also one
# before its creation, which then leaves it out); the tickets with any of them on the day.
_MILESTONES_ON = f"""
SELECT t.*, f.* EXCLUDE (ticket_id)
FROM tickets t JOIN (SELECT ticket_id, {_FIRST_AT} FROM events GROUP BY ticket_id) f
    USING (ticket_id)
WHERE {_ANY_ON_DAY}
"""


def _milestones_on(tickets: pd.DataFrame, events: pd.DataFrame, day: Day) -> pd.DataFrame:
    """The tickets completing a milestone on ``day``, each with the instant of its first
    event of every milestone (``<prefix>_at``); grouped and joined in DuckDB."""
    return query(
        _MILESTONES_ON,
        {"day_start": day.start, "day_end": day.end},
        tickets=tickets[["ticket_id", "created_at", "channel", "priority"]],
        events=events[["ticket_id", "event_at", "event_type"]],
    )


def _durations_completed_on(completed: pd.DataFrame, at_column: str, day: Day) -> pd.DataFrame:
    joined = completed[day.contains(completed[at_column])].rename(
        columns={at_column: "completed_at"}
    )
    joined["minutes"] = (joined["completed_at"] - joined["created_at"]).dt.total_seconds() / 60
    # An event before creation is bad input (quarantined upstream when detectable).
    return joined[joined["minutes"] >= 0]


def _minute_stats(
    rows: pd.DataFrame, grain: list[str], prefix: str, column: str, count: str | None = None
) -> pd.DataFrame:
    """Sum, mean, median and p90 of ``column`` per grain (and the row count if named)."""
    minutes = rows.groupby(grain)[column]
    stats = pd.DataFrame(
        {
            **({count: minutes.size()} if count else {}),
            f"{prefix}_sum": minutes.sum(),
            f"{prefix}_mean": minutes.mean(),
            f"{prefix}_median": minutes.median(),
            f"{prefix}_p90": minutes.quantile(0.9),
        }
    )
    stats = stats.reset_index().astype({count: "int64"} if count else {})
    return stats.astype(dict.fromkeys(grain, "str")) if rows.empty else stats


IntOrSeries = TypeVar("IntOrSeries", int, pd.Series)

# --- agg_daily_tickets_by_topic ----------------------------------------------


def tickets_by_topic(tickets: pd.DataFrame, day: Day, first_day: dt.date) -> pd.DataFrame:
    """Tickets created per topic on ``day``, share of the day, change vs. the previous 7 days.

    ``tickets``: ticket_id, created_at, topic for (at least) tickets created in
    the 8 days ending on ``day``. Days before ``first_day`` (the pipeline's start)
    are not part of the previous-7-day mean; days inside it with no tickets count
    as zero.
    """
    created = local_dates(tickets["created_at"], day.timezone)
    prev_start = max(first_day, day.date - dt.timedelta(days=7))
    prev_days = (day.date - prev_start).days
    today = tickets[created == day.date].groupby("topic").size()
    in_prev = (created >= prev_start) & (created < day.date)
    prev_total = tickets[in_prev].groupby("topic").size()
    topics = today.index.union(prev_total.index)
    result = pd.DataFrame(index=pd.Index(topics, name="topic"))
    result["tickets_created"] = today.reindex(topics, fill_value=0).astype("int64")
    result["tickets_created_all_topics"] = int(result["tickets_created"].sum())
    result["share_of_day"] = ratio(result["tickets_created"], result["tickets_created_all_topics"])
    result["prev_7d_days"] = prev_days
    result["prev_7d_mean"] = (
        prev_total.reindex(topics, fill_value=0) / prev_days if prev_days else np.nan
    )
    result["change_vs_prev_7d"] = result["tickets_created"] - result["prev_7d_mean"]
    result["change_rate_vs_prev_7d"] = ratio(result["change_vs_prev_7d"], result["prev_7d_mean"])
    return result.reset_index().astype({"topic": "str", "prev_7d_days": "int64"})


def days_covered(
    window_days: IntOrSeries, last_day: dt.date, first_day: dt.date | None
) -> IntOrSeries:
    """Days of a window of ``window_days`` ending on ``last_day`` that lie on or after
    ``first_day`` (the pipeline's first day: before it there are no drops, so a trailing
    figure near the start covers fewer days than its name says). ``first_day`` None: all."""
    if first_day is None:
        return window_days
    available = max(0, (last_day - first_day).days + 1)
    if isinstance(window_days, pd.Series):
        return window_days.clip(upper=available)
    return min(window_days, available)


def ratio(numerator: pd.Series, denominator: pd.Series | float) -> pd.Series:
    """numerator / denominator, empty (NaN) where the denominator is 0 or empty."""
    if isinstance(denominator, pd.Series):  # aligned already: no reindex (slow on a MultiIndex)
        denominator = denominator.astype("float64")
    else:
        denominator = pd.Series(denominator, index=numerator.index, dtype="float64")
    return (numerator / denominator.where(denominator != 0)).astype("float64")


# --- agg_daily_churn ---------------------------------------------------------


def _active_at(customers: pd.DataFrame, instant: pd.Timestamp) -> pd.Series:
    signed_up = customers["signed_up_at"] < instant
    return signed_up & (customers["churned_at"].isna() | (customers["churned_at"] >= instant))


def _between(instants: pd.Series, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    return (instants >= start) & (instants < end)


CHURN_WINDOW_DAYS = 30


def _churn_flags(customers: pd.DataFrame, day: Day) -> pd.DataFrame:
    """Per customer, 1/0 for each count of agg_daily_churn: summed over any group of
    customers they give that group's row."""
    window_start = day.shifted(1 - CHURN_WINDOW_DAYS)
    flags = {
        "customers_at_start": _active_at(customers, day.start),
        "customers_new": _between(customers["signed_up_at"], day.start, day.end),
        "customers_churned": _between(customers["churned_at"], day.start, day.end),
        "customers_at_end": _active_at(customers, day.end),
        "customers_at_start_30d": _active_at(customers, window_start),
        "customers_new_30d": _between(customers["signed_up_at"], window_start, day.end),
        "customers_churned_30d": _between(customers["churned_at"], window_start, day.end),
    }
    return pd.DataFrame({name: flag.astype("int64") for name, flag in flags.items()})


def _with_churn_rates(counts: pd.DataFrame, covered_30d: int) -> pd.DataFrame:
    """The counts with churn_rate and churn_rate_30d (empty where nobody was active at the
    start); the table's column order is the model's, applied when it is written."""
    return counts.assign(
        days_covered_30d=covered_30d,
        churn_rate=ratio(counts["customers_churned"], counts["customers_at_start"]),
        churn_rate_30d=ratio(counts["customers_churned_30d"], counts["customers_at_start_30d"]),
    )


def churn(customers: pd.DataFrame, day: Day, first_day: dt.date | None = None) -> pd.DataFrame:
    """One row: customers at start, new, churned, at end and churn rates of ``day``.

    ``customers``: current version of every customer (customer_id, signed_up_at,
    churned_at). A customer is active at instant t when signed up before t and
    not churned before t; one who signs up and churns the same day counts as
    both new and churned. ``first_day``: the pipeline's first day (days_covered_30d).
    """
    counts = _churn_flags(customers, day).sum().to_frame().T
    return _with_churn_rates(counts, days_covered(CHURN_WINDOW_DAYS, day.date, first_day))


CHURN_BREAKDOWNS = ("plan", "segment", "tenure_band")
TENURE_BAND_MONTHS = 12
TENURE_BAND_LAST = 72  # 72 months and more share one band


def tenure_bands(signed_up_at: pd.Series, instant: pd.Timestamp, timezone: str) -> pd.Series:
    """Whole calendar months from signup to ``instant`` (reporting zone; a month from Jan 31
    is complete on Feb 28), banded by year: '00-11 months', '12-23 months', ... '72+
    months'. Not signed up yet: the first band."""
    local = signed_up_at.dt.tz_convert(timezone)
    at = instant.tz_convert(timezone)
    months = (at.year - local.dt.year) * 12 + (at.month - local.dt.month)
    # The last month is complete once the signup's day (clamped to the month's length)
    # and time of day come round again.
    signup_day = local.dt.day.clip(upper=at.days_in_month)
    # Wall-clock time of day (normalize() fails where a zone skips midnight).
    signup_time = local.dt.hour * 3600 + local.dt.minute * 60 + local.dt.second
    signup_time = signup_time + local.dt.microsecond / 1e6
    at_time = at.hour * 3600 + at.minute * 60 + at.second + at.microsecond / 1e6
    incomplete = (signup_day > at.day) | ((signup_day == at.day) & (signup_time > at_time))
    months = (months - incomplete.astype("int64")).fillna(0).clip(0, TENURE_BAND_LAST)
    low = (months // TENURE_BAND_MONTHS * TENURE_BAND_MONTHS).astype("int64")
    labels = {
        m: f"{m:02d}-{m + TENURE_BAND_MONTHS - 1} months"
        for m in range(0, TENURE_BAND_LAST, TENURE_BAND_MONTHS)
    }
    return low.map({**labels, TENURE_BAND_LAST: f"{TENURE_BAND_LAST}+ months"})


def churn_by_segment(
    customers: pd.DataFrame, day: Day, first_day: dt.date | None = None
) -> pd.DataFrame:
    """agg_daily_churn's counts and rates per plan, per segment and per tenure band at the
    start of the day: ``customers`` also has plan and segment (empty: '(unknown)')."""
    flags = _churn_flags(customers, day)
    values = {
        "plan": customers["plan"],
        "segment": customers["segment"],
        "tenure_band": tenure_bands(customers["signed_up_at"], day.start, day.timezone),
    }
    parts = []
    for breakdown in CHURN_BREAKDOWNS:
        value = values[breakdown].astype("str").where(values[breakdown].notna(), "(unknown)")
        counts = flags.groupby(value.to_numpy(), sort=True).sum()
        parts.append(
            counts.rename_axis("breakdown_value").reset_index().assign(breakdown=breakdown)
        )
    counts = (
        pd.concat(parts, ignore_index=True)
        if len(customers)
        else pd.DataFrame(columns=["breakdown", "breakdown_value", *flags.columns]).astype(
            {name: "int64" for name in flags.columns}
        )
    )
    keys = counts[["breakdown", "breakdown_value"]].astype("str")
    covered = days_covered(CHURN_WINDOW_DAYS, day.date, first_day)
    return pd.concat([keys, _with_churn_rates(counts[list(flags.columns)], covered)], axis=1)


# --- agg_retention_cohorts ---------------------------------------------------


def retention_cohorts(customers: pd.DataFrame, day: Day) -> pd.DataFrame:
    """The cohort triangle as of the end of ``day``.

    Cohort = calendar month of signup (reporting zone). Cell (cohort, k) counts
    the cohort's customers still active at the end of month cohort+k, or at the
    end of ``day`` for the month ``day`` falls in. A churn known to happen after
    ``day`` does not count yet.
    """
    joined = customers[customers["signed_up_at"] < day.end]
    this_month = day.date.year * 12 + day.date.month - 1
    cohort = _month_number(joined["signed_up_at"], day.timezone)
    churned_by_day = joined["churned_at"] < day.end
    # Months after its cohort month in which a customer churned (survivors: none).
    offset = _month_number(joined["churned_at"], day.timezone) - cohort
    sizes = cohort.value_counts().rename("cohort_customers")
    grid = pd.DataFrame({"cohort": sizes.index}).merge(
        pd.DataFrame({"months_since_signup": range(this_month - int(sizes.index.min()) + 1)})
        if len(sizes)
        else pd.DataFrame({"months_since_signup": pd.Series(dtype="int64")}),
        how="cross",
    )
    grid = grid[grid["cohort"] + grid["months_since_signup"] <= this_month]
    churn_counts = (
        pd.DataFrame(
            {"cohort": cohort[churned_by_day], "months_since_signup": offset[churned_by_day]}
        )
        .value_counts()
        .rename("churned")
        .reset_index()
    )
    grid = grid.merge(churn_counts, on=["cohort", "months_since_signup"], how="left")
    grid = grid.sort_values(["cohort", "months_since_signup"], ignore_index=True)
    # Churned by the end of month k = churns in months 0..k of the cohort.
    churned_so_far = grid["churned"].fillna(0).groupby(grid["cohort"]).cumsum()
    grid["cohort_customers"] = grid["cohort"].map(sizes).astype("int64")
    grid["customers_active"] = (grid["cohort_customers"] - churned_so_far).astype("int64")
    grid["share_active"] = grid["customers_active"] / grid["cohort_customers"]
    grid["cohort_month"] = _month_dates(grid["cohort"])
    columns = ["cohort_month", "months_since_signup", "cohort_customers", "customers_active"]
    return grid[[*columns, "share_active"]].astype({"months_since_signup": "int64"})


def _month_number(instants: pd.Series, timezone: str) -> pd.Series:
    """Months since year 0 (year * 12 + month - 1) in the reporting zone, for month arithmetic."""
    local = instants.dt.tz_convert(timezone)
    return local.dt.year * 12 + local.dt.month - 1


def _month_dates(month_numbers: pd.Series) -> pd.Series:
    """First day of each month number, as dates."""
    text = (
        (month_numbers // 12).astype("str") + "-" + (month_numbers % 12 + 1).astype("str") + "-01"
    )
    return pd.to_datetime(text, format="%Y-%m-%d").dt.date


# --- dim_date ------------------------------------------------------------------


def calendar_row(day: dt.date, working_minutes: float) -> pd.DataFrame:
    """dim_date's row of ``day``: its year, quarter, month, ISO week, weekday and whether
    it is a working day (``working_minutes`` from the business schedule)."""
    iso = day.isocalendar()
    return pd.DataFrame(
        {
            "year": [day.year],
            "quarter": [(day.month - 1) // 3 + 1],
            "month": [day.month],
            "month_name": [day.strftime("%B")],
            "month_start": [day.replace(day=1)],
            "iso_year": [iso.year],
            "iso_week": [iso.week],
            "week_start": [day - dt.timedelta(days=iso.weekday - 1)],
            "weekday": [iso.weekday],
            "weekday_name": [day.strftime("%A")],
            "is_weekend": [iso.weekday >= 6],
            "working_minutes": [float(working_minutes)],
            "is_working_day": [working_minutes > 0],
        }
    ).astype({"month_name": "str", "weekday_name": "str"})
