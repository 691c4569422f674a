"""Survey metrics: NPS, CSAT (and CSS), CES per day, per trailing 7 and 30 days, by breakdown.

One DuckDB query per survey kind counts every (window, breakdown) view of the responses
(each response once per window it falls in and per breakdown it belongs to); pandas then
derives each kind's figures from the counts. Every figure carries its response count and
a low-sample flag.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from cx_pipeline.lib.metrics.core import Day, days_covered, ratio
from cx_pipeline.lib.metrics.sql import query, sql_list

WINDOWS = (1, 7, 30)
ALL = "(all)"
UNKNOWN = "(unknown)"
# breakdown -> column; None = every response. Topic and agent group exist only for
# responses tied to a ticket: those rows are CSS (customer service satisfaction).
BREAKDOWNS: dict[str, str | None] = {
    "all": None,
    "channel": "channel",
    "segment": "segment",
    "plan": "plan",
    "journey_stage": "journey_stage",
    "ticket_linked": "ticket_linked",
    "topic": "topic",
    "agent_group": "agent_group",
}
# Breakdowns that exist only for answers about a ticket (ticket_linked splits all answers
# into yes and no).
TICKET_ONLY = {"topic", "agent_group"}
KEYS = ["window_days", "breakdown", "breakdown_value"]
# The 97.5 % quantile of the normal distribution (the "1.96" of a 95 % interval), exactly.
Z95 = 1.959963984540054


def _views_sql(flags: dict[str, str]) -> str:
    """Every response once per window it falls in and per breakdown it belongs to, grouped:
    one DuckDB query computes every (window, breakdown, value) row of a survey kind.
    ``flags``: name -> SQL condition on ``score``, counted per row (promoters, ...)."""
    values = " ".join(
        f"WHEN '{name}' THEN " + (f"'{ALL}'" if column is None else
                                  f"coalesce(CAST(r.{column} AS VARCHAR), '{UNKNOWN}')")
        for name, column in BREAKDOWNS.items()
    )  # fmt: skip
    counted = "".join(
        f", CAST(count(*) FILTER (WHERE {c}) AS BIGINT) AS {n}" for n, c in flags.items()
    )
    return f"""
WITH r AS (
    SELECT *, CASE WHEN ticket_id IS NULL THEN 'no' ELSE 'yes' END AS ticket_linked
    FROM responses
),
windows (window_days, since) AS (VALUES {", ".join(f"({w}, $since_{w})" for w in WINDOWS)}),
breakdowns (breakdown) AS (VALUES {", ".join(f"('{b}')" for b in BREAKDOWNS)})
SELECT w.window_days, b.breakdown, CASE b.breakdown {values} END AS breakdown_value,
    count(*) AS responses, sum(r.score) AS score_sum{counted},
    count(r.answer_minutes) AS timed_responses,
    coalesce(sum(r.answer_minutes), 0) AS answer_minutes_sum,
    median(r.answer_minutes) AS answer_minutes_median,
    stddev_samp(r.score) AS score_sd
FROM r JOIN windows w ON r.submitted_at >= w.since AND r.submitted_at < $day_end
CROSS JOIN breakdowns b
WHERE b.breakdown NOT IN {sql_list(sorted(TICKET_ONLY))} OR r.ticket_id IS NOT NULL
GROUP BY ALL
ORDER BY ALL
"""


def _counts(responses: pd.DataFrame, day: Day, min_responses: int, **flags: str) -> pd.DataFrame:
    """Per (window, breakdown, value): response count, score sum and SD, ``flags`` counts and
    answer time (sum, median), indexed by KEYS."""
    bounds = {f"since_{w}": day.shifted(1 - w) for w in WINDOWS}
    columns = ["ticket_id", "submitted_at", "score", "answer_minutes",
               *(c for c in BREAKDOWNS.values() if c and c != "ticket_linked")]  # fmt: skip
    result = query(
        _views_sql(flags), {**bounds, "day_end": day.end}, responses=responses[columns]
    ).set_index(KEYS)
    result["answer_minutes_mean"] = ratio(result["answer_minutes_sum"], result["timed_responses"])
    result["low_sample"] = result["responses"] < min_responses
    return result


def nps(rows: pd.DataFrame, day: Day, min_responses: int) -> pd.DataFrame:
    """NPS = % promoters (9-10) - % detractors (0-6); margin of error at 95 %."""
    result = _counts(rows, day, min_responses, promoters="score >= 9", detractors="score <= 6")
    n = result["responses"]
    result["passives"] = n - result["promoters"] - result["detractors"]
    promoter_share, detractor_share = result["promoters"] / n, result["detractors"] / n
    result["nps"] = 100 * (promoter_share - detractor_share)
    result["nps_standard_error"] = 100 * np.sqrt(_nps_variance(promoter_share, detractor_share) / n)
    # Adjusted Wald (Sauro & Lewis): 3 pseudo-answers, 0.75 promoter and 0.75 detractor, so
    # the interval does not collapse to 0 when every answer is of one class.
    adjusted = n + 3
    result["nps_margin_of_error"] = (
        100
        * Z95
        * np.sqrt(
            _nps_variance(
                (result["promoters"] + 0.75) / adjusted, (result["detractors"] + 0.75) / adjusted
            )
            / adjusted
        )
    )
    columns = ["responses", "promoters", "passives", "detractors", "nps", "nps_standard_error",
               "nps_margin_of_error"]  # fmt: skip
    return _finish(result, [*columns, "low_sample"])


def _nps_variance(promoter_share: pd.Series, detractor_share: pd.Series) -> pd.Series:
    """Variance of one answer scored +1 (promoter), 0 (passive), -1 (detractor)."""
    return promoter_share + detractor_share - (promoter_share - detractor_share) ** 2


def csat(rows: pd.DataFrame, day: Day, min_responses: int) -> pd.DataFrame:
    """CSAT = share of answers 4 or 5 on 1-5 (top-two-box, a rate 0-1 like every rate in
    the marts), beside the mean score."""
    result = _counts(rows, day, min_responses, satisfied="score >= 4")
    share = result["satisfied"] / result["responses"]
    result["csat_rate"] = share
    result["score_mean"] = result["score_sum"] / result["responses"]
    result["csat_standard_error"] = np.sqrt(share * (1 - share) / result["responses"])
    # Agresti-Coull: z^2 pseudo-answers, half of them satisfied (no collapse to 0 at a rate
    # of 0 or 1).
    adjusted = result["responses"] + Z95**2
    centre = (result["satisfied"] + Z95**2 / 2) / adjusted
    result["csat_margin_of_error"] = Z95 * np.sqrt(centre * (1 - centre) / adjusted)
    columns = ["responses", "satisfied", "csat_rate", "csat_standard_error",
               "csat_margin_of_error"]  # fmt: skip
    return _finish(result, [*columns, "score_sum", "score_mean", "low_sample"])


def ces(rows: pd.DataFrame, day: Day, min_responses: int) -> pd.DataFrame:
    """CES: mean of scores normalised to 1-7, higher = easier; margin of error of the mean."""
    result = _counts(rows, day, min_responses)
    result["score_mean"] = result["score_sum"] / result["responses"]
    result["score_margin_of_error"] = Z95 * result["score_sd"] / np.sqrt(result["responses"])
    columns = ["responses", "score_sum", "score_mean", "score_sd", "score_margin_of_error"]
    return _finish(result, [*columns, "low_sample"])


ANSWER_TIME = ["timed_responses", "answer_minutes_sum", "answer_minutes_mean",
               "answer_minutes_median"]  # fmt: skip


def _finish(result: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    table = result.reset_index()[[*KEYS, *columns, *ANSWER_TIME]]
    counts = [
        c
        for c in (
            "responses",
            "timed_responses",
            "promoters",
            "passives",
            "detractors",
            "satisfied",
        )  # fmt: skip
        if c in table
    ]
    return table.astype({"window_days": "int64", **dict.fromkeys(counts, "int64")})


def normalised_ces(score: pd.Series, scale_max: pd.Series, direction: pd.Series) -> pd.Series:
    """A CES answer on 1..scale_max mapped onto 1-7, where 7 = easiest."""
    easy = 1 + 6 * (score - 1) / (scale_max - 1)
    return easy.where(direction != "lower_is_better", 8 - easy)


def survey_tables(
    responses: pd.DataFrame, day: Day, min_responses: int, first_day: dt.date | None = None
) -> dict[str, pd.DataFrame]:
    """The three survey marts of ``day``: kind -> frame; ``first_day``, the pipeline's first
    day, bounds the days each window covers."""
    is_ces = responses["survey_type"] == "ces"
    # Unknown send time (no sent_at column or an empty one): no answer time.
    answered = pd.Series(responses["submitted_at"] - responses.get("sent_at", pd.NaT))
    scored = responses.assign(
        answer_minutes=pd.to_timedelta(answered).dt.total_seconds() / 60,
        score=responses["score"].where(
            ~is_ces,
            normalised_ces(
                responses["score"], responses["scale_max"], responses["scale_direction"]
            ),
        ),
    )
    aggregate = {"nps": nps, "csat": csat, "ces": ces}
    tables = {
        kind: function(scored[scored["survey_type"] == kind], day, min_responses)
        for kind, function in aggregate.items()
    }
    return {
        kind: table.assign(
            window_days_covered=days_covered(table["window_days"], day.date, first_day)
        )
        for kind, table in tables.items()
    }
