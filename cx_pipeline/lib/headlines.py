"""A table-day's headline figures and preview: what the Dagster UI shows (and plots over
days) for each day a table was written.

Pure pandas; the figures are recomputed from the day's rows the way a dashboard would:
counts are summed over the rows chosen, and a rate is its summed numerator over its
summed denominator (never a mean of per-row rates).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

PREVIEW_ROWS = 5
PREVIEW_COLUMNS = 8


@dataclass(frozen=True)
class Headline:
    # The rows the figures come from (e.g. the overall 7-day survey row); all when empty.
    where: Mapping[str, object] = field(default_factory=dict)
    # Columns summed over those rows.
    sums: tuple[str, ...] = ()
    # (name, numerator, denominator): the summed numerator over the summed denominator.
    ratios: tuple[tuple[str, str, str], ...] = ()
    # Columns taken from the one row chosen (a score that cannot be summed).
    values: tuple[str, ...] = ()


# The overall figure of a survey table: every answer of the trailing 7 days.
_SURVEY_OVERALL = {"window_days": 7, "breakdown": "all"}

HEADLINES: dict[str, Headline] = {
    "agg_daily_ticket_activity": Headline(
        sums=("tickets_created", "tickets_solved", "tickets_reopened", "tickets_resolved"),
        ratios=(
            ("first_contact_resolution_rate", "resolved_first_contact", "tickets_resolved"),
            ("resolution_sla_rate", "resolution_sla_met", "tickets_resolved"),
            ("first_response_sla_rate", "first_response_sla_met", "tickets_first_responded"),
        ),
    ),
    "agg_daily_resolution_time": Headline(
        sums=("tickets_resolved", "tickets_first_responded"),
        ratios=(
            ("resolution_minutes_mean", "resolution_minutes_sum", "tickets_resolved"),
            (
                "first_response_minutes_mean",
                "first_response_minutes_sum",
                "tickets_first_responded",
            ),
        ),
    ),  # fmt: skip
    "agg_daily_backlog": Headline(sums=("open_tickets", "open_over_24h", "open_over_72h")),
    "agg_daily_workload": Headline(values=("tickets_solved_per_working_day",)),
    "agg_daily_tickets_by_topic": Headline(sums=("tickets_created",)),
    "agg_daily_repeat_contacts": Headline(
        sums=("customers_with_ticket", "customers_with_repeat"),
        ratios=(("repeat_contact_rate", "customers_with_repeat", "customers_with_ticket"),),
    ),
    "agg_daily_churn": Headline(values=("customers_at_end", "churn_rate", "churn_rate_30d")),
    "agg_daily_nps": Headline(where=_SURVEY_OVERALL, values=("nps", "responses")),
    "agg_daily_csat": Headline(where=_SURVEY_OVERALL, values=("csat_rate", "responses")),
    "agg_daily_ces": Headline(where=_SURVEY_OVERALL, values=("score_mean", "responses")),
}


def headline_figures(table: str, rows: pd.DataFrame) -> dict[str, float]:
    """The table's headline figures for one day; a figure with no value (a rate over 0,
    a day without the overall row) is left out rather than reported as 0."""
    headline = HEADLINES.get(table)
    if headline is None or rows.empty:
        return {}
    chosen = rows
    for column, value in headline.where.items():
        chosen = chosen[chosen[column] == value]
    figures = {column: float(chosen[column].sum()) for column in headline.sums}
    for name, numerator, denominator in headline.ratios:
        below = float(chosen[denominator].sum())
        figures[name] = float(chosen[numerator].sum()) / below if below else math.nan
    if len(chosen) == 1:
        figures |= {column: float(chosen[column].iloc[0]) for column in headline.values}
    return {name: value for name, value in figures.items() if not math.isnan(value)}


def preview(rows: pd.DataFrame) -> str:
    """The day's first rows and columns as a Markdown table."""
    if rows.empty:
        return "(no rows this day)"
    shown = rows.iloc[:PREVIEW_ROWS, :PREVIEW_COLUMNS]
    more = []
    if len(rows) > PREVIEW_ROWS:
        more.append(f"{len(rows) - PREVIEW_ROWS} more rows")
    if rows.shape[1] > PREVIEW_COLUMNS:
        more.append(f"{rows.shape[1] - PREVIEW_COLUMNS} more columns")
    note = f"\n\n({', '.join(more)})" if more else ""
    return markdown_table(shown) + note


def markdown_table(frame: pd.DataFrame) -> str:
    """A few rows as a Markdown table (missing values blank). Written out cell by cell
    (a preview has at most a few dozen) rather than by ``DataFrame.to_markdown``, whose
    tabulate costs milliseconds a table-day."""

    def cell(value: object) -> str:
        return "" if pd.isna(value) else str(value).replace("|", "\\|")  # type: ignore[call-overload]

    lines = [
        "| " + " | ".join(map(str, frame.columns)) + " |",
        "|" + "|".join(":---" for _ in frame.columns) + "|",
        *("| " + " | ".join(map(cell, row)) + " |" for row in frame.itertuples(index=False)),
    ]
    return "\n".join(lines)
