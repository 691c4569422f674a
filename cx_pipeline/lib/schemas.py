"""pandera models of every staged and mart table.

They are the single source of truth for a table's columns, types, meaning
(``description``) and natural grain (``Config.unique``): the staging code
validates with them, the warehouse DDL in sql/ is generated from them and the
Dagster UI shows them as column schemas.

Every table also has a ``date`` column (DATE) that is not part of the frame:
it is the partition key, added on write (the Parquet path's ``date=`` folder and
the warehouse column). For staging tables it is the arrival day of the drop; for
marts it is the event day the figures belong to.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Date, Series

CHANNELS = ("email", "chat", "phone", "social", "web")
PRIORITIES = ("low", "normal", "high", "urgent")
EVENT_TYPES = (
    "agent_reply",
    "customer_reply",
    "solved",
    "reopened",
    "closed",
    "escalated",
    "assigned",
    "open",
    "pending",
    "on_hold",
)
SURVEY_TYPES = ("nps", "csat", "ces")
# Inclusive score range of each survey type's canonical scale.
SURVEY_SCORE_RANGES = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}
# Answered on whole points (a CES may be an average of several items).
WHOLE_POINT_SURVEYS = ("nps", "csat")
# One interaction's handle time: more than a day is an error, not a long call.
MAX_HANDLE_SECONDS = 86_400.0
# CES comes on several scales; each response says which (1..scale_max) and which way.
CES_SCALES = (5.0, 7.0, 10.0)
SCALE_DIRECTIONS = ("higher_is_better", "lower_is_better")

UTC_MICROS = {"unit": "us", "tz": "UTC"}


def _journey_stage() -> Any:
    return pa.Field(
        description="Customer journey stage (onboarding, purchase, delivery, support, renewal "
        "or the team's own labels, lower case); '(unspecified)' when the source has none."
    )


def _segment() -> Any:
    return pa.Field(description="The customer's segment (newest record); '(unknown)' if none.")


def _timestamp(description: str, nullable: bool = False) -> Any:
    return pa.Field(dtype_kwargs=UTC_MICROS, nullable=nullable, description=description)


# --- staging -----------------------------------------------------------------


class StgTickets(pa.DataFrameModel):
    """Support tickets as created, one row per ticket version in a day's drop."""

    ticket_id: Series[str] = pa.Field(str_length={"min_value": 1}, description="Ticket id.")
    customer_id: Series[str] = pa.Field(
        str_length={"min_value": 1}, description="Customer who raised the ticket."
    )
    created_at: Series[pd.DatetimeTZDtype] = _timestamp("When the ticket was created (UTC).")
    channel: Series[str] = pa.Field(isin=CHANNELS, description="Channel the ticket came in on.")
    topic: Series[str] = pa.Field(description="Topic or main tag; '(no topic)' when empty.")
    priority: Series[str] = pa.Field(isin=PRIORITIES, description="Ticket priority.")
    agent_group: Series[str] = pa.Field(
        nullable=True, description="Agent group the ticket was routed to."
    )
    journey_stage: Series[str] = _journey_stage()

    class Config:
        strict = True


class StgTicketEvents(pa.DataFrameModel):
    """Ticket events (replies, solves, reopens, ...), one row per event."""

    ticket_id: Series[str] = pa.Field(str_length={"min_value": 1}, description="Ticket id.")
    event_at: Series[pd.DatetimeTZDtype] = _timestamp("When the event happened (UTC).")
    event_type: Series[str] = pa.Field(isin=EVENT_TYPES, description="What happened.")
    actor: Series[str] = pa.Field(
        nullable=True, description="Agent id, 'customer' or 'system' that caused the event."
    )
    handle_seconds: Series[float] = pa.Field(
        nullable=True,
        ge=0,
        le=MAX_HANDLE_SECONDS,
        description="Agent handle time of this interaction, where known (at most a day: "
        "more is a unit or typing error, e.g. inf or 1e308).",
    )
    sequence: Series[float] = pa.Field(
        nullable=True,
        description="Order of the ticket's events at one instant, where the source has it "
        "(an audit id, a log's sequence number): lower first; without it, drop order.",
    )

    class Config:
        strict = True


class StgSurveyResponses(pa.DataFrameModel):
    """Survey answers (NPS 0-10, CSAT 1-5, CES 1-7), one row per response."""

    response_id: Series[str] = pa.Field(str_length={"min_value": 1}, description="Response id.")
    customer_id: Series[str] = pa.Field(
        str_length={"min_value": 1}, description="Customer who answered."
    )
    ticket_id: Series[str] = pa.Field(
        nullable=True, description="Ticket the survey was sent for, if any."
    )
    survey_type: Series[str] = pa.Field(isin=SURVEY_TYPES, description="nps, csat or ces.")
    score: Series[float] = pa.Field(description="The answer on the survey type's scale.")
    submitted_at: Series[pd.DatetimeTZDtype] = _timestamp("When the answer was given (UTC).")
    channel: Series[str] = pa.Field(
        nullable=True, description="Channel the survey was answered on."
    )
    comment: Series[str] = pa.Field(nullable=True, description="Free-text comment, if any.")
    scale_max: Series[float] = pa.Field(
        description="Top of the answer scale: 10 for NPS, 5 for CSAT, 5, 7 or 10 for CES "
        "(default 7); the bottom is 0 for NPS, 1 otherwise."
    )
    journey_stage: Series[str] = _journey_stage()
    scale_direction: Series[str] = pa.Field(
        isin=SCALE_DIRECTIONS,
        description="higher_is_better (CES 'the company made it easy'; always for NPS and "
        "CSAT) or lower_is_better (CES 'how much effort did it take'); required for CES.",
    )
    sent_at: Series[pd.DatetimeTZDtype] = _timestamp(
        "When the survey was sent (UTC; empty if the source does not say).", nullable=True
    )

    class Config:
        strict = True

    @pa.dataframe_check(description="sent_at not after submitted_at")
    @classmethod
    def answered_after_sent(cls, df: pd.DataFrame) -> pd.Series:
        return df["sent_at"].isna() | (df["sent_at"] <= df["submitted_at"])

    @pa.dataframe_check(description="score within the response's scale")
    @classmethod
    def score_in_range(cls, df: pd.DataFrame) -> pd.Series:
        kind = df["survey_type"].astype(object)
        low = kind.map({k: v[0] for k, v in SURVEY_SCORE_RANGES.items()}).astype("float64")
        in_range = df["score"].between(low, df["scale_max"])
        # An unknown survey type is reported by its own check, not this one.
        return in_range | low.isna()

    @pa.dataframe_check(description="NPS and CSAT answers are whole points")
    @classmethod
    def whole_score(cls, df: pd.DataFrame) -> pd.Series:
        kind = df["survey_type"].astype(object)
        return ~kind.isin(WHOLE_POINT_SURVEYS) | (df["score"] % 1 == 0)

    @pa.dataframe_check(description="scale_max is the survey type's scale")
    @classmethod
    def known_scale(cls, df: pd.DataFrame) -> pd.Series:
        kind = df["survey_type"].astype(object)
        fixed = kind.map({"nps": 10.0, "csat": 5.0}).astype("float64")
        ces = (kind == "ces") & df["scale_max"].isin(CES_SCALES)
        return ces | (df["scale_max"] == fixed) | ~kind.isin(SURVEY_TYPES)


class StgCustomers(pa.DataFrameModel):
    """Customer records, one row per customer version in a day's drop."""

    customer_id: Series[str] = pa.Field(str_length={"min_value": 1}, description="Customer id.")
    signed_up_at: Series[pd.DatetimeTZDtype] = _timestamp("When the customer signed up (UTC).")
    churned_at: Series[pd.DatetimeTZDtype] = _timestamp(
        "When the customer churned (UTC); empty while active.", nullable=True
    )
    plan: Series[str] = pa.Field(nullable=True, description="Plan or tier.")
    segment: Series[str] = pa.Field(nullable=True, description="Customer segment.")
    region: Series[str] = pa.Field(nullable=True, description="Region.")

    class Config:
        strict = True

    @pa.dataframe_check(description="churned_at not before signed_up_at")
    @classmethod
    def churn_after_signup(cls, df: pd.DataFrame) -> pd.Series:
        return df["churned_at"].isna() | (df["churned_at"] >= df["signed_up_at"])


class StgRejects(pa.DataFrameModel):
    """Rows of a drop that failed validation, kept with the reason (quarantine)."""

    source: Series[str] = pa.Field(description="Source the row came from (tickets, ...).")
    file: Series[str] = pa.Field(description="Path of the drop file.")
    row_number: Series[int] = pa.Field(ge=1, description="1-based data row number in the file.")
    columns: Series[str] = pa.Field(description="Column(s) that broke a rule.")
    rules: Series[str] = pa.Field(description="The rule(s) broken.")
    message: Series[str] = pa.Field(description="What is wrong, for a person to act on.")
    raw_row: Series[str] = pa.Field(description="The row as read, as JSON text.")

    class Config:
        strict = True
        unique = ["source", "file", "row_number"]


# --- marts -------------------------------------------------------------------


def _count(description: str) -> Any:
    return pa.Field(ge=0, description=description)


def _minutes(description: str) -> Any:
    return pa.Field(nullable=True, ge=0, description=description)


def _rate(description: str) -> Any:
    return pa.Field(nullable=True, ge=0, le=1, description=description)


class AggDailyResolutionTime(pa.DataFrameModel):
    """First response and resolution times per event day x channel x priority.

    A ticket counts on the day of its first agent reply (first response) and on
    the day of its first solve or close (resolution), with the full time since
    creation in calendar minutes and in business minutes (working hours only).
    """

    channel: Series[str] = pa.Field(description="Ticket channel.")
    priority: Series[str] = pa.Field(description="Ticket priority.")
    tickets_resolved: Series[int] = _count("Tickets first resolved this day.")
    resolution_minutes_sum: Series[float] = pa.Field(
        ge=0, description="Sum of their resolution minutes (numerator of the mean)."
    )
    resolution_minutes_mean: Series[float] = _minutes("Mean minutes from creation to resolution.")
    resolution_minutes_median: Series[float] = _minutes("Median resolution minutes.")
    resolution_minutes_p90: Series[float] = _minutes("90th percentile of resolution minutes.")
    resolution_business_minutes_sum: Series[float] = pa.Field(
        ge=0, description="Sum of their resolution business minutes (business hours setting)."
    )
    resolution_business_minutes_mean: Series[float] = _minutes("Mean, in business minutes.")
    resolution_business_minutes_median: Series[float] = _minutes("Median, business minutes.")
    resolution_business_minutes_p90: Series[float] = _minutes("p90, business minutes.")
    tickets_first_responded: Series[int] = _count("Tickets whose first agent reply fell today.")
    first_response_minutes_sum: Series[float] = pa.Field(
        ge=0, description="Sum of their first response minutes (numerator of the mean)."
    )
    first_response_minutes_mean: Series[float] = _minutes("Mean minutes to first agent reply.")
    first_response_minutes_median: Series[float] = _minutes("Median first response minutes.")
    first_response_minutes_p90: Series[float] = _minutes("90th percentile first response min.")
    first_response_business_minutes_sum: Series[float] = pa.Field(
        ge=0, description="Sum of their first response business minutes."
    )
    first_response_business_minutes_mean: Series[float] = _minutes("Mean, in business minutes.")
    first_response_business_minutes_median: Series[float] = _minutes("Median, business min.")
    first_response_business_minutes_p90: Series[float] = _minutes("p90, business minutes.")

    class Config:
        strict = True
        unique = ["channel", "priority"]


class AggDailyTicketsByTopic(pa.DataFrameModel):
    """Tickets created per event day x topic, their share and change vs. the last 7 days."""

    topic: Series[str] = pa.Field(description="Ticket topic.")
    tickets_created: Series[int] = _count("Tickets of this topic created this day.")
    tickets_created_all_topics: Series[int] = _count("Tickets of any topic created this day.")
    share_of_day: Series[float] = _rate("tickets_created / tickets_created_all_topics.")
    prev_7d_days: Series[int] = pa.Field(
        ge=0, le=7, description="Days of the previous 7 inside the pipeline's date range."
    )
    prev_7d_mean: Series[float] = pa.Field(
        nullable=True, ge=0, description="Mean daily tickets of this topic over the previous days."
    )
    change_vs_prev_7d: Series[float] = pa.Field(
        nullable=True, description="tickets_created - prev_7d_mean."
    )
    change_rate_vs_prev_7d: Series[float] = pa.Field(
        nullable=True,
        description="change_vs_prev_7d / prev_7d_mean, a rate (0.5 = +50 %; empty when the "
        "mean is 0).",
    )

    class Config:
        strict = True
        unique = ["topic"]


class AggDailyChurn(pa.DataFrameModel):
    """Customer counts and churn rate per day, and over the trailing 30 days."""

    customers_at_start: Series[int] = _count("Active customers at the start of the day.")
    customers_new: Series[int] = _count("Customers who signed up during the day.")
    customers_churned: Series[int] = _count("Customers who churned during the day.")
    customers_at_end: Series[int] = _count("Active customers at the end of the day.")
    churn_rate: Series[float] = _rate("customers_churned / customers_at_start.")
    customers_at_start_30d: Series[int] = _count(
        "Active customers at the start of the 30-day window ending this day."
    )
    customers_new_30d: Series[int] = _count("Sign-ups during the 30-day window.")
    customers_churned_30d: Series[int] = _count("Churns during the 30-day window.")
    churn_rate_30d: Series[float] = pa.Field(
        nullable=True, ge=0, description="customers_churned_30d / customers_at_start_30d."
    )
    days_covered_30d: Series[int] = pa.Field(
        ge=0,
        le=30,
        description="Days of the 30-day window on or after the pipeline's first day "
        "(CX_START_DATE): below 30, the _30d figures cover only these.",
    )

    class Config:
        strict = True


class AggDailyChurnBySegment(AggDailyChurn):
    """agg_daily_churn's counts and rates split by plan, by segment and by tenure band."""

    breakdown: Series[str] = pa.Field(
        isin=["plan", "segment", "tenure_band"], description="What the rows are split by."
    )
    breakdown_value: Series[str] = pa.Field(
        description="The plan or segment (newest record; '(unknown)' if empty), or the "
        "tenure band at the start of the day ('00-11 months', ..., '72+ months')."
    )

    class Config:
        strict = True
        unique = ["breakdown", "breakdown_value"]


class AggRetentionCohorts(pa.DataFrameModel):
    """Signup-month cohorts: share still active N months after signup, as of the day."""

    cohort_month: Series[Date] = pa.Field(
        description="First day of the signup month (in the reporting time zone)."
    )
    months_since_signup: Series[int] = pa.Field(
        ge=0, description="0 = end of the signup month, 1 = end of the next month, ..."
    )
    cohort_customers: Series[int] = _count("Customers who signed up in the cohort month.")
    customers_active: Series[int] = _count(
        "Of them, active at the end of that month (or at the end of this day, if sooner)."
    )
    share_active: Series[float] = _rate("customers_active / cohort_customers.")

    class Config:
        strict = True
        unique = ["cohort_month", "months_since_signup"]


def _breakdown_fields() -> dict[str, Any]:
    return {
        "window_days": pa.Field(
            isin=[1, 7, 30],
            description="1 = the day itself; 7 / 30 = the trailing days ending on it.",
        ),
        "breakdown": pa.Field(
            description="What the rows are split by: all, channel, segment, plan, ticket_linked, "
            "or (ticket-linked responses only, i.e. CSS) topic, agent_group."
        ),
        "breakdown_value": pa.Field(
            description="The channel, segment, ... ('(all)' for breakdown all; "
            "'(unknown)' if empty)."
        ),
    }


class _SurveyBreakdown(pa.DataFrameModel):
    window_days: Series[int] = _breakdown_fields()["window_days"]
    window_days_covered: Series[int] = pa.Field(
        ge=0,
        description="Days of the window with data: fewer than window_days near the "
        "pipeline's first day (CX_START_DATE), where a trailing figure covers only these.",
    )
    breakdown: Series[str] = _breakdown_fields()["breakdown"]
    breakdown_value: Series[str] = _breakdown_fields()["breakdown_value"]
    responses: Series[int] = _count("Survey responses submitted in the window.")
    timed_responses: Series[int] = _count(
        "Responses with a sent_at, i.e. whose answer time is known."
    )
    answer_minutes_sum: Series[float] = pa.Field(
        ge=0, description="Summed minutes from sending to answering (numerator of the mean)."
    )
    answer_minutes_mean: Series[float] = _minutes("Mean minutes from sending to answering.")
    answer_minutes_median: Series[float] = _minutes("Median minutes from sending to answering.")

    class Config:
        strict = True
        unique = ["window_days", "breakdown", "breakdown_value"]


_LOW_SAMPLE = (
    "True when responses < CX_SURVEY_MIN_RESPONSES (default 30): do not read much into it."
)


class AggDailyNps(_SurveyBreakdown):
    """Net Promoter Score per submission day, trailing 7 and 30 days, by breakdown."""

    promoters: Series[int] = _count("Answers 9-10 (the number of advocates).")
    passives: Series[int] = _count("Answers 7-8.")
    detractors: Series[int] = _count("Answers 0-6.")
    nps: Series[float] = pa.Field(
        ge=-100, le=100, description="100 x (promoters - detractors) / responses."
    )
    nps_standard_error: Series[float] = pa.Field(
        ge=0, description="Standard error of nps from the promoter and detractor shares, in points."
    )
    nps_margin_of_error: Series[float] = pa.Field(
        ge=0,
        description="Half-width of the 95 % confidence interval of nps, in points (adjusted "
        "Wald: never 0 from answers of one class).",
    )
    low_sample: Series[bool] = pa.Field(description=_LOW_SAMPLE)


class AggDailyCsat(_SurveyBreakdown):
    """CSAT (top-two-box %) and mean score per submission day and window, by breakdown.

    Rows of the topic and agent_group breakdowns (and ticket_linked = yes) are CSS:
    satisfaction with a support interaction.
    """

    satisfied: Series[int] = _count("Answers 4 or 5 on the 1-5 scale.")
    csat_rate: Series[float] = _rate("satisfied / responses (0-1, like every rate).")
    csat_standard_error: Series[float] = pa.Field(
        ge=0, description="Standard error of csat_rate (same 0-1 scale)."
    )
    csat_margin_of_error: Series[float] = pa.Field(
        ge=0,
        description="Half-width of the 95 % confidence interval of csat_rate, on its 0-1 "
        "scale (Agresti-Coull: never 0 at a rate of 0 or 1).",
    )
    score_sum: Series[float] = pa.Field(ge=0, description="Sum of scores (numerator of the mean).")
    score_mean: Series[float] = pa.Field(ge=1, le=5, description="Mean score, 1-5.")
    low_sample: Series[bool] = pa.Field(description=_LOW_SAMPLE)


class AggDailyCes(_SurveyBreakdown):
    """Customer Effort Score per submission day and window, by breakdown.

    Each answer is first normalised from its own scale (1-5, 1-7, 1-10) and direction
    onto 1-7 where 7 = easiest: 1 + 6 x (score - 1) / (scale_max - 1), mirrored
    (8 - x) for lower_is_better questions.
    """

    score_sum: Series[float] = pa.Field(ge=0, description="Sum of normalised scores.")
    score_mean: Series[float] = pa.Field(ge=1, le=7, description="Mean normalised score, 1-7.")
    score_sd: Series[float] = pa.Field(
        nullable=True, ge=0, description="Sample standard deviation (empty for one response)."
    )
    score_margin_of_error: Series[float] = pa.Field(
        nullable=True, ge=0, description="Half-width of the 95 % confidence interval of the mean."
    )
    low_sample: Series[bool] = pa.Field(description=_LOW_SAMPLE)


def _maybe_timestamp(description: str) -> Any:
    return pa.Field(dtype_kwargs=UTC_MICROS, nullable=True, description=description)


def _sla(description: str) -> Any:
    return pa.Field(nullable=True, description=description)


BUSINESS = "Business minutes (MetricSettings business hours) from creation to the %s."


def _duration(statuses: str) -> Any:
    return pa.Field(
        ge=0,
        description=f"Calendar minutes in status {statuses}, from creation to the day's end.",
    )


class FctTickets(pa.DataFrameModel):
    """Per-ticket facts, one row per ticket created or touched on the day, as of its end.

    The newest row of a ticket is its current state (view fct_tickets_latest). Ages and
    SLA states are measured at the end of the row's day. customer_key is a salted hash
    of the customer id (CX_ID_SALT), not the id.
    """

    ticket_id: Series[str] = pa.Field(description="Ticket id.")
    customer_key: Series[str] = pa.Field(description="sha256(CX_ID_SALT + customer_id), 32 hex.")
    customer_segment: Series[str] = _segment()
    created_at: Series[pd.DatetimeTZDtype] = _timestamp("When the ticket was created (UTC).")
    channel: Series[str] = pa.Field(description="Channel.")
    topic: Series[str] = pa.Field(description="Topic.")
    priority: Series[str] = pa.Field(description="Priority.")
    agent_group: Series[str] = pa.Field(nullable=True, description="Agent group.")
    journey_stage: Series[str] = _journey_stage()
    status: Series[str] = pa.Field(
        isin=["new", "open", "pending", "on_hold", "solved", "closed"],
        description="Status at the end of the day: the last status event's, else new (no "
        "agent reply yet) or open; reopened counts as open.",
    )
    age_minutes: Series[float] = pa.Field(description="Minutes from creation to the day's end.")
    first_response_at: Series[pd.DatetimeTZDtype] = _maybe_timestamp("First agent reply.")
    first_response_minutes: Series[float] = _minutes("Minutes from creation to first reply.")
    first_response_business_minutes: Series[float] = _minutes(BUSINESS % "first reply")
    first_resolved_at: Series[pd.DatetimeTZDtype] = _maybe_timestamp("First solve or close.")
    first_resolution_minutes: Series[float] = _minutes("Minutes to the first resolution.")
    first_resolution_business_minutes: Series[float] = _minutes(BUSINESS % "first resolution")
    last_resolved_at: Series[pd.DatetimeTZDtype] = _maybe_timestamp("Latest solve or close.")
    full_resolution_minutes: Series[float] = _minutes("Minutes to the latest resolution.")
    full_resolution_business_minutes: Series[float] = _minutes(BUSINESS % "latest resolution")
    first_reopened_at: Series[pd.DatetimeTZDtype] = _maybe_timestamp(
        "First reopen after the first resolution (the reopen cohort's clock)."
    )
    solves: Series[int] = _count("Solved events so far.")
    reopens: Series[int] = _count("Reopened events so far.")
    agent_replies: Series[int] = _count("Agent replies so far.")
    customer_replies: Series[int] = _count("Customer replies so far.")
    interactions: Series[int] = _count("agent_replies + customer_replies.")
    touches: Series[str] = pa.Field(
        nullable=True,
        isin=["no_touch", "one_touch", "two_touch", "multi_touch"],
        description="Agent replies up to the first resolution: 0, 1, 2, 3+ (empty while open).",
    )
    escalated: Series[bool] = pa.Field(description="Escalated at least once.")
    handle_seconds: Series[float] = pa.Field(
        nullable=True, ge=0, description="Total agent handle seconds, where the channel has them."
    )
    distinct_agents: Series[int] = _count("Distinct agents who acted on it (handoffs + 1).")
    requester_wait_minutes: Series[float] = _duration("new, open and on_hold")
    agent_wait_minutes: Series[float] = _duration("pending (waiting for the customer)")
    on_hold_minutes: Series[float] = _duration("on_hold (waiting for a third party)")
    agent_work_minutes: Series[float] = _duration("new and open")
    first_response_sla_met: Series[pd.BooleanDtype] = _sla(
        "First reply within its priority's target; empty while pending (not late yet)."
    )
    resolution_sla_met: Series[pd.BooleanDtype] = _sla(
        "First resolution within its priority's target; empty while pending."
    )
    solved_same_day: Series[bool] = pa.Field(description="Created and first resolved on one day.")

    class Config:
        strict = True
        unique = ["ticket_id"]


class AggDailyTicketActivity(pa.DataFrameModel):
    """Ticket volumes and quality per event day x channel x priority x journey stage x segment.

    Cohorts: created / solved / reopened count the day's events; the resolved_* and
    *_sla_* figures are about tickets first resolved (or first answered) that day.
    """

    channel: Series[str] = pa.Field(description="Ticket channel.")
    priority: Series[str] = pa.Field(description="Ticket priority.")
    journey_stage: Series[str] = _journey_stage()
    customer_segment: Series[str] = _segment()
    tickets_created: Series[int] = _count("Tickets created this day.")
    tickets_solved: Series[int] = _count("Tickets with a solve or close event this day.")
    full_resolution_minutes_sum: Series[float] = pa.Field(
        ge=0, description="Their minutes from creation to the day's last solve."
    )
    full_resolution_minutes_mean: Series[float] = _minutes("Mean full resolution minutes.")
    tickets_reopened: Series[int] = _count("Tickets with a reopen event this day.")
    reopen_rate: Series[float] = pa.Field(
        nullable=True, ge=0, description="tickets_reopened / tickets_solved."
    )
    tickets_resolved: Series[int] = _count("Tickets first resolved this day (the cohort below).")
    resolved_escalated: Series[int] = _count("Of them, escalated at some point.")
    escalation_rate: Series[float] = _rate("resolved_escalated / tickets_resolved.")
    resolved_no_touch: Series[int] = _count("Of them, resolved with no agent reply.")
    resolved_one_touch: Series[int] = _count("... with exactly one agent reply.")
    resolved_two_touch: Series[int] = _count("... with two agent replies.")
    resolved_multi_touch: Series[int] = _count("... with three or more.")
    resolved_first_contact: Series[int] = _count(
        "... with one agent reply and no reopen by the day's end (first-contact resolution)."
    )
    first_contact_resolution_rate: Series[float] = _rate(
        "resolved_first_contact / tickets_resolved."
    )
    resolved_interactions: Series[int] = _count("Their replies (agent + customer) so far.")
    interactions_per_resolved_ticket: Series[float] = pa.Field(
        nullable=True, ge=0, description="resolved_interactions / tickets_resolved."
    )
    resolution_sla_met: Series[int] = _count("Of them, resolved within the priority's target.")
    resolution_sla_rate: Series[float] = _rate("resolution_sla_met / tickets_resolved.")
    tickets_first_responded: Series[int] = _count("Tickets first answered this day.")
    first_response_sla_met: Series[int] = _count("Of them, answered within the target.")
    first_response_sla_rate: Series[float] = _rate(
        "first_response_sla_met / tickets_first_responded."
    )
    handled_interactions: Series[int] = _count("Agent replies this day with handle seconds.")
    handle_seconds_sum: Series[float] = pa.Field(ge=0, description="Their handle seconds.")
    average_handle_seconds: Series[float] = pa.Field(
        nullable=True, ge=0, description="handle_seconds_sum / handled_interactions (AHT)."
    )
    agent_responses: Series[int] = _count(
        "Agent replies this day that answered the customer (first after creation or a "
        "customer reply)."
    )
    response_minutes_sum: Series[float] = pa.Field(ge=0, description="Their minutes waited.")
    response_minutes_mean: Series[float] = _minutes("Average response time (all responses).")

    class Config:
        strict = True
        unique = ["channel", "priority", "journey_stage", "customer_segment"]


class AggDailyWorkload(pa.DataFrameModel):
    """Tickets solved per working day: one row per day, working days from the business hours."""

    tickets_created: Series[int] = _count("Tickets created this day.")
    tickets_solved: Series[int] = _count("Tickets with a solve or close event this day.")
    working_day: Series[int] = pa.Field(
        isin=[0, 1], description="1 if the business hours open on this day (not a holiday)."
    )
    working_minutes: Series[float] = pa.Field(ge=0, description="Business minutes of the day.")
    tickets_solved_per_working_day: Series[float] = pa.Field(
        nullable=True,
        ge=0,
        description="tickets_solved / working_day (empty on a closed day; roll-ups divide "
        "the period's solved tickets by its working days).",
    )

    class Config:
        strict = True


class AggDailyRepeatContacts(pa.DataFrameModel):
    """Repeat contacts (next-issue avoidance) per creation day x topic.

    A customer repeats when a ticket they opened this day follows one of theirs on the same
    topic opened at most window_days before it.
    """

    topic: Series[str] = pa.Field(description="Ticket topic; '(all)' for every topic.")
    customers_with_ticket: Series[int] = _count("Customers who opened a ticket this day.")
    customers_with_repeat: Series[int] = _count(
        "Of them, customers whose ticket repeats a same-topic one within the window."
    )
    repeat_contact_rate: Series[float] = _rate("customers_with_repeat / customers_with_ticket.")
    next_issue_avoidance_rate: Series[float] = _rate("1 - repeat_contact_rate.")
    window_days: Series[int] = pa.Field(ge=1, description="The repeat window (setting).")
    window_days_covered: Series[int] = pa.Field(
        ge=0,
        description="Days before the day that the look-back has data for: fewer than "
        "window_days near the pipeline's first day (CX_START_DATE), where fewer repeats show.",
    )

    class Config:
        strict = True
        unique = ["topic"]


class AggDailyChannelMix(pa.DataFrameModel):
    """Preferred channel: tickets and customers per channel, for the day and trailing 30 days."""

    window_days: Series[int] = pa.Field(isin=[1, 30], description="1 = the day; 30 = trailing.")
    window_days_covered: Series[int] = pa.Field(
        ge=0,
        description="Days of the window with data: fewer than window_days near the "
        "pipeline's first day (CX_START_DATE), where a trailing figure covers only these.",
    )
    channel: Series[str] = pa.Field(description="Ticket channel.")
    tickets: Series[int] = _count("Tickets created on this channel in the window.")
    customers: Series[int] = _count("Distinct customers with a ticket on this channel.")
    customers_preferring: Series[int] = _count(
        "Customers whose preferred channel this is: most of their tickets in the window (a "
        "tie: their latest ticket's channel)."
    )
    share_of_tickets: Series[float] = _rate("tickets / all tickets in the window.")
    share_of_customers: Series[float] = _rate(
        "customers / customers with any ticket (shares add up to more than 1 when "
        "customers use several channels)."
    )
    share_preferring: Series[float] = _rate(
        "customers_preferring / customers with any ticket (adds up to 1)."
    )

    class Config:
        strict = True
        unique = ["window_days", "channel"]


class DimCustomers(pa.DataFrameModel):
    """Every customer with lifetime figures as of the end of the day (a daily snapshot).

    Lifetime counters add up from the pipeline's start date (CX_START_DATE); the profile
    columns are the customer's newest record. View dim_customers_latest: the latest day.
    """

    customer_key: Series[str] = pa.Field(description="sha256(CX_ID_SALT + customer_id), 32 hex.")
    plan: Series[str] = pa.Field(nullable=True, description="Plan or tier (newest record).")
    segment: Series[str] = pa.Field(nullable=True, description="Segment (newest record).")
    signed_up_at: Series[pd.DatetimeTZDtype] = _maybe_timestamp(
        "Signup (empty for a customer seen on tickets only)."
    )
    churned_at: Series[pd.DatetimeTZDtype] = _maybe_timestamp("Churn, if churned.")
    tenure_days: Series[float] = pa.Field(
        nullable=True, description="Days from signup to the day's end."
    )
    churned: Series[bool] = pa.Field(description="Churned by the day's end.")
    tickets: Series[int] = _count("Tickets created (lifetime).")
    tickets_resolved: Series[int] = _count("Tickets first resolved (lifetime).")
    resolution_minutes_sum: Series[float] = pa.Field(
        ge=0, description="Their first-resolution minutes (numerator of the mean)."
    )
    reopens: Series[int] = _count("Reopen events on their tickets (lifetime).")
    resolution_minutes_mean: Series[float] = _minutes("Mean minutes to first resolution.")
    last_ticket_at: Series[pd.DatetimeTZDtype] = _maybe_timestamp("Latest ticket created.")
    last_nps: Series[float] = pa.Field(nullable=True, description="Latest NPS answer (0-10).")
    last_nps_at: Series[pd.DatetimeTZDtype] = _maybe_timestamp("When it was given.")
    last_csat: Series[float] = pa.Field(nullable=True, description="Latest CSAT answer (1-5).")
    last_csat_at: Series[pd.DatetimeTZDtype] = _maybe_timestamp("When it was given.")

    class Config:
        strict = True
        unique = ["customer_key"]


def _component(what: str) -> Any:
    return pa.Field(ge=0, le=1, description=f"{what} (0 worst .. 1 best).")


class AggDailyCustomerHealth(pa.DataFrameModel):
    """Customer health score per active customer per day: a weighted mean of six components
    (weights: MetricSettings.health_weights), each kept beside the score."""

    customer_key: Series[str] = pa.Field(description="As in dim_customers.")
    plan: Series[str] = pa.Field(nullable=True, description="Plan.")
    segment: Series[str] = pa.Field(nullable=True, description="Segment.")
    tickets_30d: Series[int] = _count("Tickets created in the trailing 30 days.")
    days_covered_30d: Series[int] = pa.Field(
        ge=0,
        le=30,
        description="Days of the 30-day window on or after the pipeline's first day "
        "(CX_START_DATE): below 30, the _30d figures cover only these.",
    )
    health_score: Series[float] = pa.Field(
        ge=0, le=100, description="100 x sum(weight x component) / sum(weights)."
    )
    tenure_score: Series[float] = _component("Tenure: days / 365, capped at 1")
    plan_score: Series[float] = _component("Plan tier (MetricSettings.plan_scores; unknown 0.5)")
    ticket_volume_score: Series[float] = _component("1 - tickets_30d / 5, floored at 0")
    satisfaction_score: Series[float] = _component(
        "Latest answer: NPS / 10 or (CSAT - 1) / 4; 0.5 if never surveyed"
    )
    reopens_score: Series[float] = _component("1 - lifetime reopens / tickets")
    contact_recency_score: Series[float] = _component(
        "Days since the last ticket / 90, capped at 1; 1 if none"
    )
    risk_band: Series[str] = pa.Field(
        isin=["at_risk", "watch", "healthy"],
        description="at_risk below 40, watch below 70, healthy from 70.",
    )

    class Config:
        strict = True
        unique = ["customer_key"]


class FctOpenTickets(pa.DataFrameModel):
    """Tickets open (new, open, pending, on hold) at the end of the day: a daily snapshot.

    Built from the previous day's snapshot and the day's fct_tickets rows, so it starts
    empty on the first day of the pipeline (tickets created earlier are not known).
    """

    ticket_id: Series[str] = pa.Field(description="Ticket id.")
    created_at: Series[pd.DatetimeTZDtype] = _timestamp("When the ticket was created (UTC).")
    channel: Series[str] = pa.Field(description="Channel.")
    priority: Series[str] = pa.Field(description="Priority.")
    status: Series[str] = pa.Field(
        isin=["new", "open", "pending", "on_hold"], description="Status at the day's end."
    )

    class Config:
        strict = True
        unique = ["ticket_id"]


class AggDailyBacklog(pa.DataFrameModel):
    """Backlog: tickets still open at the end of each day, by age band and status."""

    channel: Series[str] = pa.Field(description="Ticket channel.")
    priority: Series[str] = pa.Field(description="Ticket priority.")
    open_tickets: Series[int] = _count("Tickets open at the end of the day.")
    open_over_12h: Series[int] = _count("Of them, created more than 12 hours before the day's end.")
    open_over_24h: Series[int] = _count("... more than 24 hours.")
    open_over_72h: Series[int] = _count("... more than 72 hours.")
    status_new: Series[int] = _count("Of them, not answered yet.")
    status_open: Series[int] = _count("... open (answered or reopened).")
    status_pending: Series[int] = _count("... pending (waiting for the customer).")
    status_on_hold: Series[int] = _count("... on hold (waiting for a third party).")

    class Config:
        strict = True
        unique = ["channel", "priority"]


class DimDate(pa.DataFrameModel):
    """The calendar: one row per day (its own partition), for BI tools to group and filter
    by week, month, quarter and working day without date arithmetic of their own."""

    year: Series[int] = pa.Field(description="Calendar year.")
    quarter: Series[int] = pa.Field(ge=1, le=4, description="Calendar quarter, 1-4.")
    month: Series[int] = pa.Field(ge=1, le=12, description="Month, 1-12.")
    month_name: Series[str] = pa.Field(description="January ... December.")
    month_start: Series[Date] = pa.Field(description="First day of the month.")
    iso_year: Series[int] = pa.Field(description="ISO 8601 week-numbering year.")
    iso_week: Series[int] = pa.Field(ge=1, le=53, description="ISO 8601 week, 1-53.")
    week_start: Series[Date] = pa.Field(
        description="Monday of the ISO week (the weekly views' period_start)."
    )
    weekday: Series[int] = pa.Field(ge=1, le=7, description="ISO weekday: 1 Monday ... 7 Sunday.")
    weekday_name: Series[str] = pa.Field(description="Monday ... Sunday.")
    is_weekend: Series[bool] = pa.Field(description="Saturday or Sunday.")
    working_minutes: Series[float] = pa.Field(
        ge=0, description="Business minutes of the day (CX_BUSINESS_HOURS, CX_HOLIDAYS)."
    )
    is_working_day: Series[bool] = pa.Field(description="working_minutes > 0.")

    class Config:
        strict = True
