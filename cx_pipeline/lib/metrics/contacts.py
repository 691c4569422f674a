"""Who contacts support, how often and where: repeat contacts and the channel mix.

Both read the tickets created in a trailing window (newest version of each):
ticket_id, customer_id, created_at, channel, topic. Grouped and joined in DuckDB (a
31-day window of a large team is millions of tickets); the rates in pandas.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from cx_pipeline.lib.metrics.core import Day, days_covered, ratio
from cx_pipeline.lib.metrics.sql import query

ALL_TOPICS = "(all)"
CHANNEL_WINDOWS = (1, 30)


def repeat_contacts(
    tickets: pd.DataFrame, day: Day, window_days: int, first_day: dt.date | None = None
) -> pd.DataFrame:
    """Per topic (and all topics): customers with a ticket created on ``day``, and those of
    them whose ticket repeats one on the same topic they opened in the ``window_days``
    before it. Looking back (not forward) makes a day final once it has ended.
    ``first_day``: the pipeline's first day (window_days_covered: whole days before ``day``
    that the look-back has data for)."""
    result = query(
        _REPEATS,
        {"day_start": day.start, "day_end": day.end, "window_days": window_days},
        tickets=tickets[["customer_id", "topic", "created_at"]],
    ).astype({"customers_with_ticket": "int64", "customers_with_repeat": "int64"})
    result["repeat_contact_rate"] = ratio(
        result["customers_with_repeat"], result["customers_with_ticket"]
    )
    result["next_issue_avoidance_rate"] = 1 - result["repeat_contact_rate"]
    result["window_days"] = window_days
    result["window_days_covered"] = days_covered(window_days, day.date - dt.timedelta(1), first_day)
    return result.sort_values("topic", ignore_index=True)


# Each of the day's tickets against the customer's latest same-topic ticket strictly before
# it (an as-of join, not a self-join whose size grows with the square of a busy customer's
# tickets): a repeat when that one lies within the window. A customer counts once per topic
# and once in all topics, a repeat when any of their tickets of the day is one.
_REPEATS = f"""
WITH today AS (
    SELECT * FROM tickets WHERE created_at >= $day_start AND created_at < $day_end
),
marked AS (
    SELECT t.customer_id, t.topic,
        coalesce(e.created_at >= t.created_at - to_days($window_days::INTEGER), false) AS repeat
    FROM today t ASOF LEFT JOIN tickets e
        ON t.customer_id = e.customer_id AND t.topic = e.topic AND t.created_at > e.created_at
),
per_customer AS (
    SELECT topic, customer_id, bool_or(repeat) AS repeat FROM marked GROUP BY ALL
    UNION ALL
    SELECT '{ALL_TOPICS}', customer_id, bool_or(repeat) FROM marked GROUP BY customer_id
)
SELECT topic, count(*) AS customers_with_ticket,
    count(*) FILTER (WHERE repeat) AS customers_with_repeat
FROM per_customer GROUP BY topic
"""


def channel_mix(tickets: pd.DataFrame, day: Day, first_day: dt.date | None = None) -> pd.DataFrame:
    """Per window (the day, trailing 30 days) and channel: tickets and customers there, their
    shares, and the customers whose preferred channel it is (the one most of their tickets
    in the window came in on; a tie goes to the channel of their latest ticket, then to the
    first channel by name)."""
    windows = pd.DataFrame(
        {
            "window_days": pd.Series(CHANNEL_WINDOWS, dtype="int64"),
            "since": [day.shifted(1 - window) for window in CHANNEL_WINDOWS],
        }
    )
    result = query(
        _CHANNEL_MIX,
        {"day_end": day.end},
        tickets=tickets[["customer_id", "channel", "created_at"]],
        windows=windows,
    )
    counts = ["tickets", "customers", "customers_preferring"]
    result[counts] = result[counts].astype("int64")
    result["share_of_tickets"] = ratio(result["tickets"], result.pop("window_tickets"))
    customers = result.pop("window_customers")
    result["share_of_customers"] = ratio(result["customers"], customers)
    result["share_preferring"] = ratio(result["customers_preferring"], customers)
    result["window_days_covered"] = days_covered(
        result["window_days"].astype("int64"), day.date, first_day
    )
    return result.sort_values(["window_days", "channel"], ignore_index=True)


# Every window's tickets (a ticket of the day is in both windows), grouped per window and
# channel, with the window's totals and each customer's preferred channel.
_CHANNEL_MIX = """
WITH rows AS (
    SELECT w.window_days, t.* FROM windows w
    JOIN tickets t ON t.created_at >= w.since AND t.created_at < $day_end
),
per_customer AS (
    SELECT window_days, customer_id, channel, count(*) AS tickets, max(created_at) AS latest
    FROM rows GROUP BY ALL
),
preferring AS (
    SELECT window_days, channel, count(*) AS customers_preferring FROM (
        SELECT * FROM per_customer QUALIFY row_number() OVER (
            PARTITION BY window_days, customer_id ORDER BY tickets DESC, latest DESC, channel
        ) = 1
    ) GROUP BY ALL
),
totals AS (
    SELECT window_days, count(*) AS window_tickets,
        count(DISTINCT customer_id) AS window_customers
    FROM rows GROUP BY window_days
)
SELECT window_days, channel, count(*) AS tickets, count(DISTINCT customer_id) AS customers,
    coalesce(any_value(p.customers_preferring), 0) AS customers_preferring,
    any_value(window_tickets) AS window_tickets, any_value(window_customers) AS window_customers
FROM rows LEFT JOIN preferring p USING (window_days, channel) JOIN totals USING (window_days)
GROUP BY window_days, channel
"""
