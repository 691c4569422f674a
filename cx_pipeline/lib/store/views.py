"""Roll-up views for BI tools: weekly, monthly and quarterly figures from the daily marts.

Every rate and mean is recomputed from summed numerators and denominators, never
averaged from daily rates. The SQL is portable (DuckDB and PostgreSQL alike).
Medians and percentiles cannot be rolled up from daily rows, so the views leave
them out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cx_pipeline.lib.metrics.tickets import ACTIVITY_COUNTS, ACTIVITY_RATES, ACTIVITY_SUMS, GRAIN
from cx_pipeline.lib.store.parquet import PARTITION_COLUMN
from cx_pipeline.lib.store.tables import TABLES_BY_NAME

PERIODS = ("week", "month", "quarter")


@dataclass(frozen=True)
class View:
    name: str
    table: str  # the mart it reads
    description: str
    select: str  # {table} is replaced by the mart's qualified name

    def sql(self, qualified_table: str) -> str:
        return self.select.format(table=qualified_table)


def _period(period: str) -> str:
    return f"CAST(date_trunc('{period}', date) AS DATE)"


def _resolution(period: str) -> View:
    return View(
        name=f"agg_{period}ly_resolution_time",
        table="agg_daily_resolution_time",
        description=f"First response and resolution times per {period} x channel x priority "
        "(means from summed minutes / summed tickets).",
        select=f"""SELECT {_period(period)} AS period_start, channel, priority,
    COUNT(*) AS days_with_rows,
    SUM(tickets_first_responded) AS tickets_first_responded,
    SUM(first_response_minutes_sum) AS first_response_minutes_sum,
    SUM(first_response_minutes_sum) / CAST(NULLIF(SUM(tickets_first_responded), 0) AS FLOAT8)
        AS first_response_minutes_mean,
    SUM(tickets_resolved) AS tickets_resolved,
    SUM(resolution_minutes_sum) AS resolution_minutes_sum,
    SUM(resolution_minutes_sum) / CAST(NULLIF(SUM(tickets_resolved), 0) AS FLOAT8)
        AS resolution_minutes_mean,
    {
            _ratio(
                "first_response_business_minutes_sum",
                "tickets_first_responded",
                "first_response_business_minutes_mean",
            )
        },
    {
            _ratio(
                "resolution_business_minutes_sum",
                "tickets_resolved",
                "resolution_business_minutes_mean",
            )
        }
FROM {{table}}
GROUP BY 1, 2, 3""",
    )


def _topics(period: str) -> View:
    return View(
        name=f"agg_{period}ly_tickets_by_topic",
        table="agg_daily_tickets_by_topic",
        description=f"Tickets created per {period} x topic and the topic's share of the {period}.",
        select=f"""SELECT period_start, topic, tickets_created,
    tickets_created / CAST(NULLIF(SUM(tickets_created) OVER (PARTITION BY period_start), 0)
        AS FLOAT8) AS share_of_period
FROM (
    SELECT {_period(period)} AS period_start, topic, SUM(tickets_created) AS tickets_created
    FROM {{table}} GROUP BY 1, 2
) AS per_period""",
    )


def _churn(period: str, by_segment: bool = False) -> View:
    """Churn and retention per period; ``by_segment``: per plan, segment and tenure band too
    (from agg_daily_churn_by_segment). At start = the period's first day's start, at end =
    its last day's end."""
    keys = "breakdown, breakdown_value, " if by_segment else ""
    over = f"PARTITION BY {_period(period)}{', breakdown, breakdown_value' if by_segment else ''}"
    return View(
        name=f"agg_{period}ly_churn{'_by_segment' if by_segment else ''}",
        table=f"agg_daily_churn{'_by_segment' if by_segment else ''}",
        description=f"Customers at the start and end of each {period}, new, churned, churn "
        "rate (churned / at start) and retention rate ((at end - new) / at start)"
        + (", per plan, segment and tenure band." if by_segment else "."),
        select=f"""SELECT period_start, {keys}days_covered, customers_at_start, customers_new,
    customers_churned, customers_at_end,
    customers_churned / CAST(NULLIF(customers_at_start, 0) AS FLOAT8) AS churn_rate,
    (customers_at_end - customers_new) / CAST(NULLIF(customers_at_start, 0) AS FLOAT8)
        AS retention_rate
FROM (
    SELECT period_start, {keys}COUNT(*) AS days_covered,
        MAX(CASE WHEN first_day = 1 THEN customers_at_start END) AS customers_at_start,
        SUM(customers_new) AS customers_new,
        SUM(customers_churned) AS customers_churned,
        MAX(CASE WHEN last_day = 1 THEN customers_at_end END) AS customers_at_end
    FROM (
        SELECT {_period(period)} AS period_start, {keys}customers_at_start, customers_new,
            customers_churned, customers_at_end,
            ROW_NUMBER() OVER ({over} ORDER BY date) AS first_day,
            ROW_NUMBER() OVER ({over} ORDER BY date DESC) AS last_day
        FROM {{table}}
    ) AS days
    GROUP BY period_start{", breakdown, breakdown_value" if by_segment else ""}
) AS per_period""",
    )


def _churn_by_segment(period: str) -> View:
    return _churn(period, by_segment=True)


def _ratio(numerator: str, denominator: str, name: str) -> str:
    return f"SUM({numerator}) / CAST(NULLIF(SUM({denominator}), 0) AS FLOAT8) AS {name}"


def _activity(period: str) -> View:
    summed = [*ACTIVITY_COUNTS, *ACTIVITY_SUMS]
    sums = ",\n    ".join(f"SUM({column}) AS {column}" for column in summed)
    rates = ",\n    ".join(_ratio(*rate) for rate in ACTIVITY_RATES)
    return View(
        name=f"agg_{period}ly_ticket_activity",
        table="agg_daily_ticket_activity",
        description=f"Ticket volumes, reopen, escalation, first-contact resolution, SLA, AHT "
        f"and response times per {period} x channel x priority x journey stage x segment, "
        "from summed counts.",
        select=f"""SELECT {_period(period)} AS period_start, {", ".join(GRAIN)},
    COUNT(DISTINCT date) AS days_with_rows,
    {sums},
    {rates}
FROM {{table}}
GROUP BY {", ".join(str(i) for i in range(1, len(GRAIN) + 2))}""",
    )


def _workload(period: str) -> View:
    return View(
        name=f"agg_{period}ly_workload",
        table="agg_daily_workload",
        description=f"Tickets solved per working day of each {period}: solved tickets / "
        "working days.",
        select=f"""SELECT {_period(period)} AS period_start,
    SUM(tickets_created) AS tickets_created,
    SUM(tickets_solved) AS tickets_solved,
    SUM(working_day) AS working_days,
    {_ratio("tickets_solved", "working_day", "tickets_solved_per_working_day")}
FROM {{table}}
GROUP BY 1""",
    )


# Survey mart -> (counts summed over the period, the period's figures from those sums).
SURVEY_ROLL_UPS = {
    "nps": (
        ("responses", "promoters", "passives", "detractors"),
        "100.0 * (SUM(promoters) - SUM(detractors)) / NULLIF(SUM(responses), 0) AS nps",
    ),
    "csat": (
        ("responses", "satisfied", "score_sum"),
        _ratio("satisfied", "responses", "csat_rate")
        + ",\n    "
        + _ratio("score_sum", "responses", "score_mean"),
    ),
    "ces": (
        ("responses", "score_sum"),
        _ratio("score_sum", "responses", "score_mean"),
    ),
}


def _survey(kind: str) -> Callable[[str], View]:
    counts, figures = SURVEY_ROLL_UPS[kind]

    def build(period: str) -> View:
        sums = ",\n    ".join(f"SUM({column}) AS {column}" for column in counts)
        return View(
            name=f"agg_{period}ly_{kind}",
            table=f"agg_daily_{kind}",
            description=f"{kind.upper()} per {period} x breakdown, from the answers of each "
            "day (window_days = 1) summed over the period: never an average of daily scores.",
            select=f"""SELECT {_period(period)} AS period_start, breakdown, breakdown_value,
    COUNT(*) AS days_with_answers,
    {sums},
    {figures}
FROM {{table}}
WHERE window_days = 1
GROUP BY 1, 2, 3""",
        )

    return build


def _backlog(period: str) -> View:
    # A backlog is a stock, not a flow: a period's figure is its last day's.
    return View(
        name=f"agg_{period}ly_backlog",
        table="agg_daily_backlog",
        description=f"The backlog at the end of each {period} (its last day with data) per "
        "channel x priority: a stock is not summed over days.",
        select=f"""SELECT period_start, date AS as_of, channel, priority, open_tickets,
    open_over_12h, open_over_24h, open_over_72h
FROM (
    SELECT {_period(period)} AS period_start, b.*,
        MAX(date) OVER (PARTITION BY {_period(period)}) AS last_day
    FROM {{table}} AS b
) AS by_period
WHERE date = last_day""",
    )


# Windows of the cohort reopen rate, in days after the first resolution.
REOPEN_WINDOWS = (7, 30)


def _reopen_cohort(period: str) -> View:
    """Of the tickets first resolved in a period, the share reopened within N days of it.
    A ticket's cohort day is the day of its first fct_tickets row with a resolution, so the
    view needs no time zone; a reopen restates its cohort's period."""
    counts = ",\n    ".join(
        f"SUM(CASE WHEN first_reopened_at < first_resolved_at + INTERVAL '{days} days' "
        f"THEN 1 ELSE 0 END) AS reopened_within_{days}_days"
        for days in REOPEN_WINDOWS
    )
    rates = ",\n    ".join(
        f"SUM(CASE WHEN first_reopened_at < first_resolved_at + INTERVAL '{days} days' "
        f"THEN 1 ELSE 0 END) / CAST(NULLIF(COUNT(*), 0) AS FLOAT8) AS reopen_rate_{days}_days"
        for days in REOPEN_WINDOWS
    )
    return View(
        name=f"agg_{period}ly_reopen_cohort",
        table="fct_tickets",
        description=f"Of the tickets first resolved in a {period}, the share reopened within "
        f"{' and '.join(map(str, REOPEN_WINDOWS))} days of that resolution; "
        "days_observed_after: days of data after the period's last cohort day (a window is "
        "final once it is at least that window).",
        select=f"""WITH cohort AS (
    SELECT ticket_id,
        MIN(CASE WHEN first_resolved_at IS NOT NULL THEN date END) AS date,
        MIN(first_resolved_at) AS first_resolved_at,
        MIN(first_reopened_at) AS first_reopened_at
    FROM {{table}}
    GROUP BY ticket_id
)
SELECT {_period(period)} AS period_start,
    COUNT(*) AS tickets_resolved,
    {counts},
    {rates},
    (SELECT MAX(date) FROM {{table}}) - MAX(date) AS days_observed_after
FROM cohort
WHERE date IS NOT NULL
GROUP BY 1""",
    )


FCT_TICKETS_LATEST = View(
    name="fct_tickets_latest",
    table="fct_tickets",
    description="Each ticket's newest row in fct_tickets: its current state.",
    select="""SELECT * FROM (
    SELECT t.*, ROW_NUMBER() OVER (PARTITION BY ticket_id ORDER BY date DESC) AS newest
    FROM {table} AS t
) AS ranked
WHERE newest = 1""",
)


def _latest_day(name: str, table: str, description: str) -> View:
    return View(
        name=name,
        table=table,
        description=description,
        select="""SELECT * FROM {table} WHERE date = (SELECT MAX(date) FROM {table})""",
    )


LATEST_SNAPSHOTS = (
    _latest_day(
        "agg_latest_retention_cohorts",
        "agg_retention_cohorts",
        "The retention cohort triangle as of the latest day (for a heatmap).",
    ),
    _latest_day(
        "dim_customers_latest",
        "dim_customers",
        "Every customer's lifetime figures as of the latest day.",
    ),
)

VIEWS: tuple[View, ...] = (
    *(
        build(period)
        for build in (
            _resolution,
            _topics,
            _churn,
            _churn_by_segment,
            _activity,
            _workload,
            _reopen_cohort,
            _backlog,
            *(_survey(kind) for kind in SURVEY_ROLL_UPS),
        )
        for period in PERIODS
    ),
    *LATEST_SNAPSHOTS,
    FCT_TICKETS_LATEST,
)


def views_of(table: str) -> list[View]:
    return [view for view in VIEWS if view.table == table]


def views_script() -> str:
    """All views as one portable SQL script (sql/views.sql)."""
    header = (
        "-- Generated by `cx-pipeline ddl --write` from cx_pipeline/lib/store/views.py; "
        "do not edit.\n"
        "-- Portable SQL for DuckDB and PostgreSQL. The pipeline creates these views itself.\n"
    )
    blocks = [
        f"-- {view.description}\nCREATE OR REPLACE VIEW {view.name} AS\n{view.sql(view.table)};\n"
        for view in VIEWS
    ]
    return header + "\n" + "\n".join(blocks)


# Columns the views compute, described once; every other column of a view means what the
# same column of its table means (summed over the period where the view sums it).
VIEW_COLUMNS = {
    "period_start": "First day of the period (the Monday of a week, the 1st of a month).",
    "days_with_rows": "Days of the period with a row for this group.",
    "days_with_answers": "Days of the period with answers in this group.",
    "days_covered": "Days of the period with a row (a period still running has fewer).",
    "as_of": "The period's last day with data: the day the stock is counted at.",
    "retention_rate": "(customers_at_end - customers_new) / customers_at_start.",
    "share_of_period": "This topic's share of the period's tickets created.",
    "working_days": "Working days of the period (business hours, holidays).",
    "tickets_resolved": "Tickets first resolved in the period (the cohort).",
    "reopened_within_7_days": "Of the cohort, reopened less than 7 days after that resolution.",
    "reopened_within_30_days": "Of the cohort, reopened less than 30 days after it.",
    "reopen_rate_7_days": "reopened_within_7_days / tickets_resolved.",
    "reopen_rate_30_days": "reopened_within_30_days / tickets_resolved.",
    "days_observed_after": "Days of data after the period's last cohort day; a window's "
    "figure is final once this is at least the window.",
    "newest": "1: the ticket's newest row.",
}


def column_description(view: View, column: str) -> str | None:
    """What a view's column means, for its comment (None: say nothing rather than guess)."""
    if column in VIEW_COLUMNS:
        return VIEW_COLUMNS[column]
    spec = TABLES_BY_NAME.get(view.table)
    if spec is None:
        return None
    if column == PARTITION_COLUMN:
        return spec.date_description
    return next((c.description for c in spec.columns if c.name == column), None) or None
