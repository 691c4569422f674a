"""Per-ticket facts and daily ticket activity: pure pandas over staged tickets and events.

A ticket's facts are computed from its row and every event of it up to the end of
the day; ages and SLA states are measured at the day's end, never the wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import pandera.pandas as pa

from cx_pipeline.lib.metrics.business_hours import BusinessSchedule
from cx_pipeline.lib.metrics.core import RESOLUTION_EVENTS, Day, ratio
from cx_pipeline.lib.metrics.sql import last_of_each, numbered, query, sql_list
from cx_pipeline.lib.schemas import AggDailyTicketActivity, FctTickets

STATUS_EVENTS = {
    "open": "open",
    "pending": "pending",
    "on_hold": "on_hold",
    "reopened": "open",
    "solved": "solved",
    "closed": "closed",
}
NOT_AGENTS = ("customer", "system")
UNKNOWN_SEGMENT = "(unknown)"
TOUCH_BANDS = ("no_touch", "one_touch", "two_touch", "multi_touch")


@dataclass(frozen=True)
class SlaTargets:
    """Minutes to first response and to resolution, per priority (defaults 24 h and 2 days)."""

    first_response: dict[str, float] = field(default_factory=dict)
    resolution: dict[str, float] = field(default_factory=dict)
    default_first_response: float = 24 * 60
    default_resolution: float = 2 * 24 * 60

    def for_priorities(self, priority: pd.Series) -> tuple[pd.Series, pd.Series]:
        return (
            _per_priority(priority, self.first_response, self.default_first_response),
            _per_priority(priority, self.resolution, self.default_resolution),
        )


def _per_priority(priority: pd.Series, targets: dict[str, float], default: float) -> pd.Series:
    # A comparison per listed priority: Series.map on text runs a Python call per row.
    minutes = pd.Series(default, index=priority.index, dtype="float64")
    for name, target in targets.items():
        minutes[(priority == name).to_numpy(dtype=bool, na_value=False)] = target
    return minutes


def hash_ids(ids: pd.Series, salt: str) -> pd.Series:
    """A stable pseudonym for an identifier: sha256(salt + id), hex, first 32 chars;
    each distinct id hashed once, in DuckDB (a million a day would take seconds in Python)."""
    unique = pd.DataFrame({"id": ids.dropna().unique()}, dtype="str")
    digests = query(
        "SELECT id, substr(sha256($salt || id), 1, 32) AS digest FROM ids", {"salt": salt},
        ids=unique,
    )  # fmt: skip
    return ids.map(pd.Series(digests["digest"].to_numpy(), index=digests["id"])).astype("str")


def _minutes(later: pd.Series, earlier: pd.Series) -> pd.Series:
    return (later - earlier).dt.total_seconds() / 60


def ticket_facts(
    tickets: pd.DataFrame,
    events: pd.DataFrame,
    day: Day,
    sla: SlaTargets,
    salt: str,
    schedule: BusinessSchedule,
) -> pd.DataFrame:
    """One row per ticket: its figures as of the end of ``day``.

    ``tickets``: newest version of each ticket (ticket_id, customer_id, created_at,
    channel, topic, priority, agent_group). ``events``: all their events before the
    day's end (ticket_id, event_at, event_type, actor, handle_seconds).
    """
    if tickets.empty:  # a quiet day (pandas cannot merge empty Arrow-backed keys)
        return _empty(FctTickets)
    # An event before its ticket's creation is bad input (flagged by a check): it is
    # left out of every figure rather than making a negative duration.
    # One query: the events' figures and status durations joined to the tickets in
    # DuckDB, in the tickets' own order (also a ticket with no event yet).
    rows = query(
        _FACTS, {"day_end": day.end}, all_events=numbered(events), tickets=numbered(tickets)
    )
    counts = ["solves", "reopens", "agent_replies", "customer_replies", "distinct_agents"]
    rows[counts] = rows[counts].fillna(0).astype("int64")
    rows["escalated"] = rows["escalated"].astype("boolean").fillna(False).astype("bool")
    rows["first_response_minutes"] = _minutes(rows["first_response_at"], rows["created_at"])
    rows["first_resolution_minutes"] = _minutes(rows["first_resolved_at"], rows["created_at"])
    rows["full_resolution_minutes"] = _minutes(rows["last_resolved_at"], rows["created_at"])
    for milestone, at_column in BUSINESS_MILESTONES.items():
        rows[f"{milestone}_business_minutes"] = schedule.minutes_between(
            rows["created_at"], rows[at_column]
        )
    rows["interactions"] = rows["agent_replies"] + rows["customer_replies"]
    rows["age_minutes"] = _minutes(pd.Series(day.end, index=rows.index), rows["created_at"])
    first_target, resolution_target = sla.for_priorities(rows["priority"])
    rows["first_response_sla_met"] = _sla_met(
        rows["first_response_minutes"], rows["age_minutes"], first_target
    )
    rows["resolution_sla_met"] = _sla_met(
        rows["first_resolution_minutes"], rows["age_minutes"], resolution_target
    )
    # Local calendar days as naive midnights (not date objects, and not normalize(), which
    # fails in zones that skip midnight).
    created_day = rows["created_at"].dt.tz_convert(day.timezone).dt.tz_localize(None).dt.floor("D")
    resolved = rows["first_resolved_at"].dt.tz_convert(day.timezone).dt.tz_localize(None)
    rows["solved_same_day"] = (created_day == resolved.dt.floor("D")).astype("bool")
    rows["customer_key"] = hash_ids(rows["customer_id"], salt)
    rows["customer_segment"] = rows["customer_segment"].fillna(UNKNOWN_SEGMENT)
    return rows[FACT_COLUMNS].reset_index(drop=True)


_RESOLUTION = f"event_type IN {sql_list(RESOLUTION_EVENTS)}"
_AGENT = f"actor NOT IN {sql_list(NOT_AGENTS)}"
# Handle time in whole microseconds: integers sum to the same bits in any row order and any
# split of the rows between DuckDB's threads (a float sum, even fsum, can differ in its last
# bit from one run to the next), so a rerun rewrites the same figures.
_HANDLE_US = "round(handle_seconds * 1e6)::HUGEINT"

# Milestone -> the column with its instant; each gets <milestone>_business_minutes.
BUSINESS_MILESTONES = {
    "first_response": "first_response_at",
    "first_resolution": "first_resolved_at",
    "full_resolution": "last_resolved_at",
}
FACT_COLUMNS = [
    "ticket_id", "customer_key", "customer_segment", "created_at", "channel", "topic",
    "priority", "agent_group", "journey_stage", "status", "age_minutes", "first_response_at",
    "first_response_minutes",
    "first_response_business_minutes", "first_resolved_at", "first_resolution_minutes",
    "first_resolution_business_minutes", "last_resolved_at", "full_resolution_minutes",
    "full_resolution_business_minutes", "first_reopened_at", "solves", "reopens",
    "agent_replies", "customer_replies",
    "interactions", "touches", "escalated", "handle_seconds", "distinct_agents",
    "requester_wait_minutes", "agent_wait_minutes", "on_hold_minutes", "agent_work_minutes",
    "first_response_sla_met", "resolution_sla_met", "solved_same_day",
]  # fmt: skip

# Status -> the status durations it counts towards (Zendesk's definitions).
DURATIONS_BY_STATUS = {
    "new": ("requester_wait_minutes", "agent_work_minutes"),
    "open": ("requester_wait_minutes", "agent_work_minutes"),
    "on_hold": ("requester_wait_minutes", "on_hold_minutes"),
    "pending": ("agent_wait_minutes",),
}
DURATIONS = ("requester_wait_minutes", "agent_wait_minutes", "on_hold_minutes",
             "agent_work_minutes")  # fmt: skip
# A reply moves a ticket out of a waiting status without a status event of its own.
REPLY_TRANSITIONS = {("agent_reply", "new"): "open", ("customer_reply", "pending"): "open"}


def status_durations(tickets: pd.DataFrame, events: pd.DataFrame, day: Day) -> pd.DataFrame:
    """Per ticket, its status at the day's end and the calendar minutes spent in each
    status group from creation to the day's end: requester wait (new, open, on hold),
    agent wait (pending), on hold, agent work (new, open).

    A ticket starts ``new``; status events set the status (reopened -> open); an agent
    reply to a new ticket opens it and a customer reply to a pending one reopens it."""
    per_ticket = query(
        _PER_TICKET,
        {"day_end": day.end},
        tickets=tickets[["ticket_id", "created_at"]],
        events=numbered(events[["ticket_id", "event_at", "event_type", "actor", "handle_seconds"]]),
    )
    return per_ticket[["ticket_id", "status", *DURATIONS]]


def _sql_case(column: str, mapping: dict[str, str]) -> str:
    whens = " ".join(f"WHEN {column} = '{key}' THEN '{value}'" for key, value in mapping.items())
    return f"CASE {whens} END"


def _sql_duration(name: str) -> str:
    statuses = tuple(s for s, names in DURATIONS_BY_STATUS.items() if name in names)
    # Whole microseconds summed exactly, so a rerun gives the same bits in any order.
    micros = (
        f"sum(epoch_us(until) - epoch_us(event_at)) FILTER (WHERE status IN {sql_list(statuses)})"
    )
    return f"coalesce({micros}, 0) / 60e6 AS {name}"


_REPLY_KINDS = sorted({kind for kind, _ in REPLY_TRANSITIONS})
# Per reply kind: whether one came after the ticket's last status event (so far).
_REPLIED_SINCE_STATUS = ",\n        ".join(
    f"last_value(CASE WHEN raw_status IS NOT NULL THEN false WHEN event_type = '{kind}' "
    f"THEN true END IGNORE NULLS) OVER in_order AS {kind}_since_status"
    for kind in _REPLY_KINDS
)
# A waiting status left by a reply (each waiting status has one reply that moves it).
_REPLY_MOVES = " ".join(
    f"WHEN raw_before = '{waiting}' AND {kind}_since_status THEN '{to}'"
    for (kind, waiting), to in REPLY_TRANSITIONS.items()
)
_IN_ORDER = "PARTITION BY ticket_id ORDER BY event_at, row_order"
# Per ticket, in one pass over its stream of events from creation ('new'; same-instant
# events in the order they came): its status, each status held until the next event or
# the day's end (the last status event's, or the status a reply moved it to since), and
# its milestones and counts. The status durations need the window sorted by ticket and
# time; the first resolution, which the reopens and touches need, rides on that window
# instead of a second group-by joined back.
_PER_TICKET = f"""
WITH stream AS (
    SELECT ticket_id, created_at AS event_at, 'created' AS event_type, NULL AS actor,
        NULL::DOUBLE AS handle_seconds, 'new' AS raw_status, -1 AS row_order
    FROM tickets
    UNION ALL
    SELECT ticket_id, event_at, event_type, actor, handle_seconds,
        {_sql_case("event_type", STATUS_EVENTS)}, row_order
    FROM events
),
marked AS (
    SELECT *,
        last_value(raw_status IGNORE NULLS) OVER in_order AS raw_before,
        {_REPLIED_SINCE_STATUS},
        coalesce(lead(event_at) OVER in_order, $day_end) AS until,
        row_number() OVER in_order AS position,
        min(event_at) FILTER (WHERE {_RESOLUTION}) OVER (PARTITION BY ticket_id)
            AS first_resolved_at
    FROM stream WINDOW in_order AS ({_IN_ORDER})
),
held AS (
    SELECT *, CASE {_REPLY_MOVES} ELSE raw_before END AS status FROM marked
)
SELECT ticket_id, arg_max(status, position) AS status,
    {", ".join(_sql_duration(name) for name in DURATIONS)},
    min(event_at) FILTER (WHERE event_type = 'agent_reply') AS first_response_at,
    any_value(first_resolved_at) AS first_resolved_at,
    max(event_at) FILTER (WHERE {_RESOLUTION}) AS last_resolved_at,
    min(event_at) FILTER (WHERE event_type = 'reopened' AND event_at >= first_resolved_at)
        AS first_reopened_at,
    count(*) FILTER (WHERE event_type = 'solved') AS solves,
    count(*) FILTER (WHERE event_type = 'reopened') AS reopens,
    count(*) FILTER (WHERE event_type = 'agent_reply') AS agent_replies,
    count(*) FILTER (WHERE event_type = 'customer_reply') AS customer_replies,
    bool_or(event_type = 'escalated') AS escalated,
    sum({_HANDLE_US}) / 1e6 AS handle_seconds,
    count(DISTINCT actor) FILTER (WHERE {_AGENT}) AS distinct_agents,
    count(*) FILTER (WHERE event_type = 'agent_reply' AND event_at <= first_resolved_at)
        AS replies_before_resolution
FROM held GROUP BY ticket_id
"""


# Agent replies up to the first resolution, banded; empty while unresolved.
_REPLY_BANDS = " ".join(
    f"WHEN coalesce(p.replies_before_resolution, 0) = {replies} THEN '{band}'"
    for replies, band in enumerate(TOUCH_BANDS[:-1])
)
_TOUCHES = (
    f"CASE WHEN p.first_resolved_at IS NULL THEN NULL {_REPLY_BANDS} ELSE '{TOUCH_BANDS[-1]}' END"
)
# Per ticket (in the tickets' order): its row, the figures of its events from its creation
# to the day's end (an event before its creation is left out) and its status durations.
_FACTS = f"""
WITH events AS (
    SELECT e.* FROM all_events e JOIN tickets t USING (ticket_id)
    WHERE e.event_at < $day_end AND e.event_at >= t.created_at
),
per_ticket AS ({_PER_TICKET})
SELECT t.* EXCLUDE (row_order), p.* EXCLUDE (ticket_id), {_TOUCHES} AS touches
FROM tickets t LEFT JOIN per_ticket p USING (ticket_id)
ORDER BY t.row_order
"""


def _sla_met(minutes: pd.Series, age: pd.Series, target: pd.Series) -> pd.Series:
    """True / False once decided; empty while neither done nor past the target."""
    decided = minutes.notna() | (age > target)
    met = minutes.notna() & (minutes <= target)
    return met.astype("boolean").where(decided)


# --- agg_daily_ticket_activity -----------------------------------------------

# Rows of agg_daily_ticket_activity; a ticket's stage and its customer's segment let a
# dashboard see which moment of the journey (and which customers) hurt.
GRAIN = ["channel", "priority", "journey_stage", "customer_segment"]


def ticket_activity(facts: pd.DataFrame, events: pd.DataFrame, day: Day) -> pd.DataFrame:
    """Per channel x priority x journey stage x customer segment: volumes, reopens, touches,
    escalations, SLA, AHT and response times of ``day``. ``facts``: ticket_facts of the
    tickets touched on the day; ``events``: their events (the day's and earlier)."""
    if facts.empty:
        return _empty(AggDailyTicketActivity)
    columns = ["ticket_id", *GRAIN, "created_at", "first_resolved_at", "first_response_at",
               "escalated", "interactions", "resolution_sla_met", "first_response_sla_met",
               "touches", "reopens"]  # fmt: skip
    result = query(
        _ACTIVITY,
        {"day_start": day.start, "day_end": day.end},
        facts=facts[columns],
        events=numbered(events[["ticket_id", "event_at", "event_type", "handle_seconds"]]),
    ).set_index(GRAIN)
    if result.empty:
        return _empty(AggDailyTicketActivity)
    result = result[ACTIVITY_COUNTS + ACTIVITY_SUMS]
    result = result.astype(
        {**dict.fromkeys(ACTIVITY_COUNTS, "int64"), **dict.fromkeys(ACTIVITY_SUMS, "float64")}
    )
    for numerator, denominator, name in ACTIVITY_RATES:
        result[name] = ratio(result[numerator], result[denominator])
    return result.reset_index().sort_values(GRAIN, ignore_index=True)


ACTIVITY_COUNTS = [
    "tickets_created", "tickets_solved", "tickets_reopened", "tickets_resolved",
    "resolved_escalated", "resolved_no_touch", "resolved_one_touch", "resolved_two_touch",
    "resolved_multi_touch", "resolved_first_contact", "resolved_interactions",
    "resolution_sla_met",
    "tickets_first_responded", "first_response_sla_met", "handled_interactions", "agent_responses",
]  # fmt: skip
ACTIVITY_SUMS = ["full_resolution_minutes_sum", "handle_seconds_sum", "response_minutes_sum"]
# (numerator, denominator, rate): every rate of the table, also recomputed by the roll-up views.
ACTIVITY_RATES = (
    ("tickets_reopened", "tickets_solved", "reopen_rate"),
    ("resolved_escalated", "tickets_resolved", "escalation_rate"),
    ("resolved_first_contact", "tickets_resolved", "first_contact_resolution_rate"),
    ("resolved_interactions", "tickets_resolved", "interactions_per_resolved_ticket"),
    ("resolution_sla_met", "tickets_resolved", "resolution_sla_rate"),
    ("first_response_sla_met", "tickets_first_responded", "first_response_sla_rate"),
    ("full_resolution_minutes_sum", "tickets_solved", "full_resolution_minutes_mean"),
    ("handle_seconds_sum", "handled_interactions", "average_handle_seconds"),
    ("response_minutes_sum", "agent_responses", "response_minutes_mean"),
)


def _empty(model: type[pa.DataFrameModel]) -> pd.DataFrame:
    columns = model.to_schema().columns
    return pd.DataFrame(
        {name: pd.Series(dtype=column.dtype.type) for name, column in columns.items()}
    )


def _on_day(column: str) -> str:
    return f"{column} >= $day_start AND {column} < $day_end"


_GRAIN_SQL = ", ".join(GRAIN)
_FACT_GRAIN = ", ".join(f"f.{column}" for column in GRAIN)
_CUSTOMER_SIDE = "event_type IN ('created', 'customer_reply')"
# Each agent reply that answers the customer (the first reply after the ticket's creation
# or after a customer reply), with the microseconds since that customer side event. The
# window sorts the replies alone; the grain joins the few rows that answer.
_AGENT_RESPONSES = f"""
WITH stream AS (
    SELECT ticket_id, created_at AS event_at, 'created' AS event_type, -1 AS row_order
    FROM facts
    UNION ALL
    SELECT ticket_id, event_at, event_type, row_order FROM lived
    WHERE event_type IN ('customer_reply', 'agent_reply')
),
marked AS (
    SELECT *,
        last_value(CASE WHEN {_CUSTOMER_SIDE} THEN event_at END IGNORE NULLS)
            OVER ({_IN_ORDER}) AS waiting_since,
        coalesce(lag({_CUSTOMER_SIDE}) OVER ({_IN_ORDER}), false) AS after_customer
    FROM stream
)
SELECT m.ticket_id, m.event_at, {_FACT_GRAIN},
    epoch_us(m.event_at) - epoch_us(m.waiting_since) AS response_us
FROM marked m JOIN facts f USING (ticket_id)
WHERE m.event_type = 'agent_reply' AND m.after_customer
"""
_TOUCH_COUNTS = ", ".join(
    f"(touches = '{band}')::BIGINT AS resolved_{band}" for band in TOUCH_BANDS
)
# Every figure of the day as rows of (grain, figure...), summed per grain: a grain appears
# when any figure has a row for it.
_ACTIVITY = f"""
WITH lived AS (  -- events from the ticket's creation on, as in ticket_facts
    SELECT e.ticket_id, e.event_at, e.event_type, e.handle_seconds, e.row_order,
        f.created_at, {_FACT_GRAIN}
    FROM events e JOIN facts f USING (ticket_id) WHERE e.event_at >= f.created_at
),
-- A solve or close counts once per resolution: not when the ticket was already solved
-- (a close after a solve, with no reopen between, is the same resolution).
resolutions AS (
    SELECT ticket_id, row_order, coalesce(
        lag({_RESOLUTION}) OVER ({_IN_ORDER}), false) AS already_resolved
    FROM lived WHERE {_RESOLUTION} OR event_type = 'reopened'
),
today AS (
    SELECT l.*, coalesce(r.already_resolved, false) AS already_resolved
    FROM lived l LEFT JOIN resolutions r USING (ticket_id, row_order)
    WHERE {_on_day("l.event_at")}
),
responses AS ({_AGENT_RESPONSES}),
parts AS (
    SELECT {_GRAIN_SQL}, 1 AS tickets_created FROM facts WHERE {_on_day("created_at")}
    UNION ALL BY NAME
    SELECT {", ".join(f"any_value({column}) AS {column}" for column in GRAIN)}, 1 AS tickets_solved,
        max(epoch_us(event_at)) - epoch_us(any_value(created_at)) AS full_resolution_us
    FROM today WHERE {_RESOLUTION} AND NOT already_resolved GROUP BY ticket_id
    UNION ALL BY NAME
    SELECT {_GRAIN_SQL}, count(DISTINCT ticket_id) AS tickets_reopened
    FROM today WHERE event_type = 'reopened' GROUP BY ALL
    UNION ALL BY NAME
    SELECT {_GRAIN_SQL}, 1 AS tickets_resolved, escalated::BIGINT AS resolved_escalated,
        interactions AS resolved_interactions,
        coalesce(resolution_sla_met::BIGINT, 0) AS resolution_sla_met, {_TOUCH_COUNTS},
        -- One touch and not reopened by the day's end (a later reopen does not restate it).
        (touches = 'one_touch' AND reopens = 0)::BIGINT AS resolved_first_contact
    FROM facts WHERE {_on_day("first_resolved_at")}
    UNION ALL BY NAME
    SELECT {_GRAIN_SQL}, 1 AS tickets_first_responded,
        coalesce(first_response_sla_met::BIGINT, 0) AS first_response_sla_met
    FROM facts WHERE {_on_day("first_response_at")}
    UNION ALL BY NAME
    SELECT {_GRAIN_SQL}, 1 AS handled_interactions, {_HANDLE_US} AS handle_us FROM today
    WHERE event_type = 'agent_reply' AND handle_seconds IS NOT NULL
    UNION ALL BY NAME
    SELECT {_GRAIN_SQL}, 1 AS agent_responses, response_us FROM responses
    WHERE {_on_day("event_at")}
)
SELECT {_GRAIN_SQL},
    {", ".join(f"coalesce(sum({count}), 0) AS {count}" for count in ACTIVITY_COUNTS)},
    coalesce(sum(full_resolution_us), 0) / 60e6 AS full_resolution_minutes_sum,
    coalesce(sum(handle_us), 0) / 1e6 AS handle_seconds_sum,
    coalesce(sum(response_us), 0) / 60e6 AS response_minutes_sum
FROM parts GROUP BY ALL ORDER BY ALL
"""


def workload(activity: pd.DataFrame, day: Day, schedule: BusinessSchedule) -> pd.DataFrame:
    """One row: the day's created and solved tickets, whether it is a working day, and
    tickets solved per working day."""
    minutes = schedule.working_minutes(day.date)
    row = pd.DataFrame(
        {
            "tickets_created": [int(activity["tickets_created"].sum())],
            "tickets_solved": [int(activity["tickets_solved"].sum())],
            "working_day": [int(minutes > 0)],
            "working_minutes": [minutes],
        }
    )
    row["tickets_solved_per_working_day"] = ratio(row["tickets_solved"], row["working_day"])
    return row


# --- backlog -------------------------------------------------------------------

OPEN_STATUSES = ("new", "open", "pending", "on_hold")
BACKLOG_GRAIN = ["channel", "priority"]
SNAPSHOT_COLUMNS = ["ticket_id", "created_at", *BACKLOG_GRAIN, "status"]
AGE_BANDS_HOURS = (12, 24, 72)


def open_tickets(previous: pd.DataFrame, facts: pd.DataFrame) -> pd.DataFrame:
    """Tickets open at the end of a day: the previous day's open tickets, updated by the
    day's facts (a ticket touched on the day takes its new status), minus solved/closed."""
    merged = pd.concat([previous[SNAPSHOT_COLUMNS], facts[SNAPSHOT_COLUMNS]], ignore_index=True)
    newest = last_of_each(merged, ["ticket_id"])
    still_open = newest[newest["status"].isin(OPEN_STATUSES)]
    return still_open.sort_values("ticket_id", ignore_index=True)


def backlog(snapshot: pd.DataFrame, day: Day) -> pd.DataFrame:
    """Open tickets at the end of ``day`` per channel x priority, by age and status."""
    age_hours = (day.end - snapshot["created_at"]).dt.total_seconds() / 3600
    flags = {
        f"open_over_{hours}h": (age_hours > hours).astype("int64") for hours in AGE_BANDS_HOURS
    }
    flags |= {
        f"status_{status}": (snapshot["status"] == status).astype("int64")
        for status in OPEN_STATUSES
    }
    counted = snapshot.assign(open_tickets=1, **flags)
    result = counted.groupby(BACKLOG_GRAIN)[["open_tickets", *flags]].sum().reset_index()
    return result.astype(dict.fromkeys(["open_tickets", *flags], "int64"))
