"""Who contacts support, how often and where: repeat contacts and the channel mix. Pure pandas.

Both read the tickets created in a trailing window (newest version of each):
ticket_id, customer_id, created_at, channel, topic.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from cx_pipeline.lib.metrics.core import Day, days_covered, ratio

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
    today = tickets[day.contains(tickets["created_at"])].sort_values("created_at")
    earlier = tickets[["customer_id", "topic", "created_at"]].rename(
        columns={"created_at": "earlier_at"}
    )
    # Each of today's tickets against the customer's latest same-topic ticket strictly
    # before it, if one lies within the window: a sorted as-of join, not a self-join whose
    # size grows with the square of a busy customer's tickets.
    nearest = pd.merge_asof(
        today,
        earlier.sort_values("earlier_at"),
        left_on="created_at",
        right_on="earlier_at",
        by=["customer_id", "topic"],
        allow_exact_matches=False,
        tolerance=pd.Timedelta(days=window_days),
    )
    today = nearest.assign(repeat=nearest["earlier_at"].notna()).drop(columns="earlier_at")
    rows = pd.concat([today, today.assign(topic=ALL_TOPICS)], ignore_index=True)
    per_customer = rows.groupby(["topic", "customer_id"])["repeat"].any().reset_index()
    result = per_customer.groupby("topic").agg(
        customers_with_ticket=("customer_id", "size"), customers_with_repeat=("repeat", "sum")
    )
    result = result.astype("int64").reset_index()
    result["repeat_contact_rate"] = ratio(
        result["customers_with_repeat"], result["customers_with_ticket"]
    )
    result["next_issue_avoidance_rate"] = 1 - result["repeat_contact_rate"]
    result["window_days"] = window_days
    result["window_days_covered"] = days_covered(window_days, day.date - dt.timedelta(1), first_day)
    return result.sort_values("topic", ignore_index=True)


def channel_mix(tickets: pd.DataFrame, day: Day, first_day: dt.date | None = None) -> pd.DataFrame:
    """Per window (the day, trailing 30 days) and channel: tickets and customers there, their
    shares, and the customers whose preferred channel it is (the one most of their tickets
    in the window came in on; a tie goes to the channel of their latest ticket)."""
    frames = []
    for window in CHANNEL_WINDOWS:
        rows = tickets[
            (tickets["created_at"] >= day.shifted(1 - window)) & (tickets["created_at"] < day.end)
        ]
        per_channel = rows.groupby("channel").agg(
            tickets=("ticket_id", "size"), customers=("customer_id", "nunique")
        )
        per_channel["customers_preferring"] = _preferred_channels(rows).value_counts()
        per_channel = per_channel.fillna(0).astype("int64")
        per_channel["share_of_tickets"] = ratio(per_channel["tickets"], len(rows))
        customers = rows["customer_id"].nunique()
        per_channel["share_of_customers"] = ratio(per_channel["customers"], customers)
        per_channel["share_preferring"] = ratio(per_channel["customers_preferring"], customers)
        covered = days_covered(window, day.date, first_day)
        frames.append(
            per_channel.reset_index().assign(window_days=window, window_days_covered=covered)
        )
    result = pd.concat(frames, ignore_index=True)
    return result.sort_values(["window_days", "channel"], ignore_index=True)


def _preferred_channels(rows: pd.DataFrame) -> pd.Series:
    """Each customer's preferred channel among ``rows``."""
    counts = rows.groupby(["customer_id", "channel"]).agg(
        tickets=("ticket_id", "size"), latest=("created_at", "max")
    )
    ranked = counts.reset_index().sort_values(
        ["customer_id", "tickets", "latest"], ascending=[True, False, False]
    )
    return ranked.drop_duplicates("customer_id")["channel"].rename(None)
