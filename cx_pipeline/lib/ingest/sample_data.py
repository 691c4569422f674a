"""Deterministic sample drops: realistic tickets, events, surveys and customers.

Seeded, vectorised numpy (loops run over days, never rows). What it models:
weekday and hour-of-day volume, a topic mix that shifts over time (and some
topics in Portuguese, Russian and Chinese), long-tailed (log-normal) response
and resolution times, tickets that stay open across days, reopens, a service
"bad patch" that slows answers and lowers CSAT/CES/NPS and raises churn, and
customers who sign up and churn. Each row lands in the drop of the day its
event happened (the arrival day), like a daily export.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from cx_pipeline.lib.schemas import CHANNELS

DAY = pd.Timedelta(days=1)
HOUR_WEIGHTS = np.array(
    [1, 1, 1, 1, 1, 2, 3, 5, 8, 10, 10, 9, 8, 9, 10, 10, 9, 7, 5, 4, 3, 2, 2, 1]
)
WEEKDAY_FACTOR = np.array([1.15, 1.1, 1.05, 1.0, 0.95, 0.5, 0.45])
CHANNEL_WEIGHTS = np.array([0.40, 0.25, 0.15, 0.08, 0.12])  # email chat phone social web
# (median minutes to first reply) per channel, same order.
FIRST_REPLY_MEDIAN_MIN = np.array([180.0, 4.0, 2.0, 60.0, 240.0])
PRIORITIES = np.array(["low", "normal", "high", "urgent"])
PRIORITY_WEIGHTS = np.array([0.2, 0.55, 0.2, 0.05])
PRIORITY_SPEED = np.array([1.4, 1.0, 0.6, 0.3])
# The solve curve: most tickets are solved within hours, SLOW_SOLVE_SHARE of them after
# days; unanswered tickets are closed by the system after about ABANDONED_CLOSE_MEDIAN_MIN.
SLOW_SOLVE_SHARE = 0.07
SLOW_SOLVE_MEDIAN_MIN = 5 * 1440.0
ABANDONED_CLOSE_MEDIAN_MIN = 3 * 1440.0
TOPICS = np.array(
    [
        "billing",
        "login",
        "shipping",
        "refund",
        "bug",
        "feature request",
        "cobrança",
        "доставка",
        "退款",
    ]
)
TOPIC_WEIGHTS_START = np.array([0.22, 0.20, 0.15, 0.10, 0.12, 0.08, 0.05, 0.04, 0.04])
TOPIC_WEIGHTS_END = np.array([0.18, 0.08, 0.25, 0.12, 0.14, 0.08, 0.06, 0.05, 0.04])
TOPIC_STAGE = {
    "login": "onboarding", "billing": "purchase", "cobrança": "purchase", "refund": "purchase",
    "退款": "purchase", "shipping": "delivery", "доставка": "delivery",
}  # fmt: skip
TOPIC_GROUP = {"billing": "billing", "refund": "billing", "cobrança": "billing", "bug": "tier2"}
PLANS = np.array(["free", "starter", "pro", "enterprise"])
PLAN_WEIGHTS = np.array([0.4, 0.3, 0.2, 0.1])
PLAN_MEAN_LIFETIME_DAYS = np.array([300.0, 700.0, 1400.0, 3000.0])
SEGMENTS = np.array(["smb", "mid-market", "enterprise"])
REGIONS = np.array(["emea", "na", "apac", "latam"])
COMMENTS = np.array(
    [
        "Quick and helpful, thanks!",
        "Took far too long to get an answer.",
        "Atendimento excelente, resolveram rápido.",
        "Demorou muito para responder.",
        "Спасибо, всё решили быстро.",
        "Ответа пришлось ждать слишком долго.",
        "客服很专业，问题很快解决了。",
        "等了很久才有人回复。",
        "Said \"it's fixed\", but it wasn't; reopened, again.",
    ]
)


@dataclass(frozen=True)
class SampleConfig:
    start: dt.date = dt.date(2026, 1, 1)
    days: int = 90
    tickets_per_day: float = 300.0
    initial_customers: int = 3000
    seed: int = 20260101
    # Days (from the start) of the service's bad patch.
    bad_patch: tuple[int, int] = (35, 50)


def generate(config: SampleConfig) -> dict[str, pd.DataFrame]:
    """Canonical rows of the four sources, each with an ``arrival`` date column."""
    rng = np.random.default_rng(config.seed)
    quality = _service_quality(config)
    customers = _customers(config, rng, quality)
    tickets = _tickets(config, rng, customers)
    events, solved = _ticket_events(config, rng, tickets, quality)
    surveys = _surveys(config, rng, tickets, solved, customers, quality)
    end = pd.Timestamp(config.start, tz="UTC") + config.days * DAY
    frames = {
        "customers": _customer_drops(customers, config),
        "tickets": tickets.assign(arrival=_dates(tickets["created_at"])),
        "ticket_events": events[events["event_at"] < end].assign(
            arrival=lambda f: _dates(f["event_at"])
        ),
        "survey_responses": surveys[surveys["submitted_at"] < end].assign(
            arrival=lambda f: _dates(f["submitted_at"])
        ),
    }
    return {name: frame.reset_index(drop=True) for name, frame in frames.items()}


def _dates(instants: pd.Series) -> pd.Series:
    return instants.dt.tz_convert("UTC").dt.date


def _service_quality(config: SampleConfig) -> np.ndarray:
    """Per day, 1.0 = normal service; lower = slower answers, unhappier customers."""
    quality = np.ones(config.days + 60)
    first, last = config.bad_patch
    quality[first:last] = 0.55
    return quality


def _day_index(instants: pd.Series, config: SampleConfig, limit: int) -> np.ndarray:
    days = ((instants - pd.Timestamp(config.start, tz="UTC")) / DAY).to_numpy()
    return np.clip(np.floor(np.nan_to_num(days, nan=0)).astype(int), 0, limit - 1)


def _random_times(rng: np.random.Generator, days: np.ndarray, start: dt.date) -> pd.Series:
    hours = rng.choice(24, size=len(days), p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    seconds = days * 86400 + hours * 3600 + rng.integers(0, 3600, size=len(days))
    return pd.Series(pd.Timestamp(start, tz="UTC") + pd.to_timedelta(seconds, unit="s")).dt.as_unit(
        "us"
    )


def _customers(config: SampleConfig, rng: np.random.Generator, quality: np.ndarray) -> pd.DataFrame:
    start = pd.Timestamp(config.start, tz="UTC")
    daily_signups = rng.poisson(
        config.initial_customers * 0.004 * np.resize(WEEKDAY_FACTOR, config.days)
    )
    new_days = np.repeat(np.arange(config.days), daily_signups)
    existing_age = rng.uniform(1, 730, size=config.initial_customers)
    signed_up_at = pd.concat(
        [
            pd.Series(start - pd.to_timedelta(existing_age, unit="D")).dt.floor("s"),
            _random_times(rng, new_days, config.start),
        ],
        ignore_index=True,
    ).dt.as_unit("us")
    count = len(signed_up_at)
    plan_index = rng.choice(len(PLANS), size=count, p=PLAN_WEIGHTS)
    lifetime = rng.exponential(PLAN_MEAN_LIFETIME_DAYS[plan_index])
    churned_at = signed_up_at + pd.to_timedelta(lifetime, unit="D")
    # The bad patch makes some customers leave sooner.
    in_patch = quality[_day_index(churned_at, config, len(quality))] < 1
    extra = (rng.random(count) < 0.002 * config.days) & ~in_patch
    patch_day = rng.integers(*config.bad_patch, size=count)
    churned_at = churned_at.where(
        ~extra | (signed_up_at >= start + patch_day * DAY),
        start + pd.to_timedelta(patch_day * 86400 + rng.integers(0, 86400, count), unit="s"),
    )
    end = start + config.days * DAY
    customers = pd.DataFrame(
        {
            "customer_id": [f"C{i:06d}" for i in range(count)],
            "signed_up_at": signed_up_at,
            # Churns after the end are the future: not known yet.
            "churned_at": churned_at.where(churned_at < end).dt.floor("s"),
            "plan": PLANS[plan_index],
            "segment": rng.choice(SEGMENTS, size=count, p=[0.6, 0.3, 0.1]),
            "region": rng.choice(REGIONS, size=count),
        }
    )
    # Customers who left before the first day are history the drops never show.
    return customers[(churned_at >= start).to_numpy()].reset_index(drop=True)


def _customer_drops(customers: pd.DataFrame, config: SampleConfig) -> pd.DataFrame:
    """A customer lands on signup day (existing ones on the first day), again when churning."""
    first_day = config.start
    signup_day = _dates(customers["signed_up_at"]).map(lambda d: max(d, first_day))
    signup_rows = customers.assign(churned_at=pd.NaT, arrival=signup_day)  # type: ignore[arg-type]
    churned = customers[customers["churned_at"].notna()]
    churn_rows = churned.assign(arrival=_dates(churned["churned_at"]))
    rows = pd.concat([signup_rows, churn_rows], ignore_index=True)
    # Signed up and churned in one drop: the drop holds the final version only.
    rows = rows.drop_duplicates(subset=["customer_id", "arrival"], keep="last")
    return rows.astype({"churned_at": "datetime64[us, UTC]"})


def _tickets(
    config: SampleConfig, rng: np.random.Generator, customers: pd.DataFrame
) -> pd.DataFrame:
    weekday = np.array(
        [(config.start + dt.timedelta(days=d)).weekday() for d in range(config.days)]
    )
    growth = np.linspace(1.0, 1.15, config.days)
    counts = rng.poisson(config.tickets_per_day * WEEKDAY_FACTOR[weekday] * growth)
    days = np.repeat(np.arange(config.days), counts)
    created_at = _random_times(rng, days, config.start)
    progress = (days / max(config.days - 1, 1))[:, None]
    topic_weights = TOPIC_WEIGHTS_START * (1 - progress) + TOPIC_WEIGHTS_END * progress
    topic_index = (rng.random(len(days))[:, None] > np.cumsum(topic_weights, axis=1)).sum(axis=1)
    topics = TOPICS[np.minimum(topic_index, len(TOPICS) - 1)]
    # Customers who had signed up by then (sorted by signup, so a prefix).
    by_signup = customers.sort_values("signed_up_at")
    known = np.searchsorted(by_signup["signed_up_at"].to_numpy(), created_at.to_numpy())
    pick = (rng.random(len(days)) * np.maximum(known, 1)).astype(int)
    return pd.DataFrame(
        {
            "ticket_id": [f"T{i:07d}" for i in range(len(days))],
            "customer_id": by_signup["customer_id"].to_numpy()[pick],
            "created_at": created_at,
            "channel": rng.choice(np.array(CHANNELS), size=len(days), p=CHANNEL_WEIGHTS),
            "topic": topics,
            "priority": rng.choice(PRIORITIES, size=len(days), p=PRIORITY_WEIGHTS),
            "agent_group": pd.Series(topics).map(TOPIC_GROUP).fillna("tier1").to_numpy(),
            # A fifth of billing questions come at renewal time.
            "journey_stage": np.where(
                (topics == "billing") & (rng.random(len(days)) < 0.2),
                "renewal",
                pd.Series(topics).map(TOPIC_STAGE).fillna("support").to_numpy(),
            ),
        }
    )


def _lognormal_minutes(rng: np.random.Generator, median: np.ndarray, sigma: float) -> pd.Series:
    return pd.Series(
        pd.to_timedelta(median * rng.lognormal(0, sigma, size=len(median)), unit="min")
    )


def _ticket_events(
    config: SampleConfig, rng: np.random.Generator, tickets: pd.DataFrame, quality: np.ndarray
) -> tuple[pd.DataFrame, pd.DataFrame]:
    n = len(tickets)
    created = tickets["created_at"].reset_index(drop=True)
    q = quality[_day_index(created, config, len(quality))]
    channel_index = pd.Categorical(tickets["channel"], categories=CHANNELS).codes
    speed = PRIORITY_SPEED[pd.Categorical(tickets["priority"], categories=PRIORITIES).codes]
    answered = rng.random(n) > 0.03
    first_reply = created + _lognormal_minutes(
        rng, FIRST_REPLY_MEDIAN_MIN[channel_index] * speed / q, 1.1
    )
    customer_replies = answered & (rng.random(n) < 0.6)
    customer_reply = first_reply + _lognormal_minutes(rng, np.full(n, 120.0), 1.0)
    second_reply = customer_reply + _lognormal_minutes(rng, np.full(n, 60.0) / q, 1.0)
    last_reply = second_reply.where(customer_replies, first_reply)
    # Every answered ticket is solved in the end; a few wait for days (a bug fix, a
    # refund from a third party), so the backlog has a tail but no ticket open for ever.
    slow = rng.random(n) < SLOW_SOLVE_SHARE
    solved = last_reply + _lognormal_minutes(rng, 360.0 * speed / q, 1.3).where(
        ~slow, _lognormal_minutes(rng, np.full(n, SLOW_SOLVE_MEDIAN_MIN), 0.8)
    )
    # Tickets nobody answered (spam, duplicates, the customer gave up) are closed by
    # the system after a few days without a solve.
    abandoned_close = created + _lognormal_minutes(rng, np.full(n, ABANDONED_CLOSE_MEDIAN_MIN), 0.5)
    reopened_flag = answered & (rng.random(n) < 0.06 + 0.1 * (1 - q))
    reopened = solved + _lognormal_minutes(rng, np.full(n, 2 * 1440.0), 0.8)
    reopen_reply = reopened + _lognormal_minutes(rng, np.full(n, 90.0) / q, 1.0)
    solved_again = reopen_reply + _lognormal_minutes(rng, np.full(n, 600.0) / q, 1.0)
    final_solve = solved_again.where(reopened_flag, solved)
    escalated_flag = answered & (rng.random(n) < 0.05)
    # An escalated ticket waits on hold for the second line, then is open again (only
    # where that ends before its first solve).
    hold_at = first_reply + pd.Timedelta(hours=1, seconds=1)
    hold_end = hold_at + _lognormal_minutes(rng, np.full(n, 120.0), 0.8)
    held = escalated_flag & (hold_end < solved).to_numpy()
    handled = np.isin(tickets["channel"].to_numpy(), ["phone", "chat"])
    agents = np.array([f"agent-{i:02d}" for i in range(1, 25)])
    agent = rng.choice(agents, size=n)

    def event(mask: np.ndarray, at: pd.Series, kind: str, actor: np.ndarray) -> pd.DataFrame:
        handle = np.where(
            handled & (kind == "agent_reply"), rng.lognormal(np.log(300), 0.6, n), np.nan
        )
        return pd.DataFrame(
            {
                "ticket_id": tickets["ticket_id"].to_numpy()[mask],
                "event_at": at[mask].dt.floor("s").to_numpy(),
                "event_type": kind,
                "actor": actor[mask],
                "handle_seconds": np.round(handle[mask], 1),
            }
        )

    customer = np.full(n, "customer")
    system = np.full(n, "system")
    events = pd.concat(
        [
            event(answered, first_reply, "agent_reply", agent),
            # The agent asked the customer something: pending until they reply.
            event(customer_replies, first_reply + pd.Timedelta(seconds=1), "pending", agent),
            event(customer_replies, customer_reply, "customer_reply", customer),
            event(customer_replies, second_reply, "agent_reply", agent),
            event(escalated_flag, first_reply + pd.Timedelta(hours=1), "escalated", agent),
            event(held, hold_at, "on_hold", agent),
            event(held, hold_end, "open", agent),
            event(answered, solved, "solved", agent),
            event(reopened_flag, reopened, "reopened", customer),
            event(reopened_flag, reopen_reply, "agent_reply", agent),
            event(reopened_flag, solved_again, "solved", agent),
            event(answered, final_solve + pd.Timedelta(days=4), "closed", system),
            event(~answered, abandoned_close, "closed", system),
        ],
        ignore_index=True,
    )
    events["event_at"] = events["event_at"].dt.tz_convert("UTC").dt.as_unit("us")
    solved_info = pd.DataFrame(
        {
            "ticket_id": tickets["ticket_id"],
            "customer_id": tickets["customer_id"],
            "channel": tickets["channel"],
            "journey_stage": tickets["journey_stage"],
            "solved_at": solved.dt.floor("s"),
            "hours_to_solve": (solved - created).dt.total_seconds() / 3600,
            "quality": q,
        }
    )[answered]
    return events.sort_values(["event_at", "ticket_id"], ignore_index=True), solved_info


def _surveys(
    config: SampleConfig,
    rng: np.random.Generator,
    tickets: pd.DataFrame,
    solved: pd.DataFrame,
    customers: pd.DataFrame,
    quality: np.ndarray,
) -> pd.DataFrame:
    csat = solved[rng.random(len(solved)) < 0.35]
    ces = solved[rng.random(len(solved)) < 0.15]
    slowness = lambda s: np.log1p(s["hours_to_solve"].to_numpy() / 24)  # noqa: E731
    csat_score = np.clip(
        np.round(rng.normal(4.6 - 0.5 * slowness(csat) - 2.0 * (1 - csat["quality"]), 0.8)), 1, 5
    )
    ces_score = np.clip(
        np.round(rng.normal(6.0 - 0.8 * slowness(ces) - 2.5 * (1 - ces["quality"]), 1.0)), 1, 7
    )
    nps_count = rng.poisson(config.tickets_per_day * 0.15, size=config.days)
    nps_days = np.repeat(np.arange(config.days), nps_count)
    nps_at = _random_times(rng, nps_days, config.start)
    nps_quality = quality[nps_days]
    nps_score = np.clip(np.round(rng.normal(8.0 - 5.0 * (1 - nps_quality), 2.0)), 0, 10)
    nps_customers = rng.choice(customers["customer_id"].to_numpy(), size=len(nps_days))

    def responses(kind, customer_id, ticket_id, at, score, channel, stage):
        count = len(score)
        chosen = rng.choice(COMMENTS, size=count).astype(object)
        comment = np.where(rng.random(count) < 0.2, chosen, np.array(None, dtype=object))
        return pd.DataFrame(
            {
                "customer_id": np.asarray(customer_id),
                "ticket_id": ticket_id,
                "survey_type": kind,
                "score": score,
                "submitted_at": pd.to_datetime(pd.Series(at), utc=True).to_numpy(),
                "channel": channel,
                "comment": comment,
                "journey_stage": stage,
                # The sample's CES question is "the company made it easy" (1-7).
                "scale_direction": "higher_is_better" if kind == "ces" else None,
            }
        )

    delay = lambda frame: _lognormal_minutes(rng, np.full(len(frame), 180.0), 1.0).to_numpy()  # noqa: E731
    frames = [
        responses(
            kind,
            rows["customer_id"],
            rows["ticket_id"].to_numpy(),
            rows["solved_at"] + delay(rows),
            score,
            rows["channel"].to_numpy(),
            rows["journey_stage"].to_numpy(),
        )
        for kind, rows, score in (("csat", csat, csat_score), ("ces", ces, ces_score))
    ]
    nps_channels = rng.choice(["email", "web"], size=len(nps_days))
    # Relationship NPS: sent after onboarding, before renewal, or with no stage.
    nps_stages = rng.choice(np.array(["onboarding", "renewal", None], dtype=object),
                            size=len(nps_days), p=[0.2, 0.3, 0.5])  # fmt: skip
    frames.append(
        responses("nps", nps_customers, None, nps_at, nps_score, nps_channels, nps_stages)
    )
    surveys = pd.concat(frames, ignore_index=True)
    surveys["submitted_at"] = pd.to_datetime(surveys["submitted_at"], utc=True).dt.floor("s")
    surveys = surveys.sort_values(["submitted_at", "customer_id"], ignore_index=True)
    surveys.insert(0, "response_id", [f"R{i:07d}" for i in range(len(surveys))])
    return surveys


# --- writing drops -----------------------------------------------------------

DROP_FORMAT = {
    "tickets": "csv",
    "ticket_events": "csv",
    "customers": "csv",
    "survey_responses": "jsonl",
}


def write_sample_drops(
    frames: dict[str, pd.DataFrame], landing_dir: Path, config: SampleConfig
) -> int:
    """One file per source and day, header-only on a day without rows (a real export
    still lands then: a missing file means a missing drop); returns the files written."""
    days = [config.start + dt.timedelta(days=offset) for offset in range(config.days)]
    written = 0
    for source, frame in frames.items():
        folder = landing_dir / source
        folder.mkdir(parents=True, exist_ok=True)
        by_day = dict(iter(frame.groupby("arrival", sort=True)))
        empty = frame.iloc[0:0]
        for day in days:
            rows = by_day.get(day, empty).drop(columns=["arrival"])
            _write_drop(rows, folder / f"{day.isoformat()}.{DROP_FORMAT[source]}")
            written += 1
    return written


def _write_drop(rows: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(rows, preserve_index=False)
    for index, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type):
            # ISO 8601 with an explicit offset, as most exports write it.
            seconds = table[field.name].cast(pa.timestamp("s", tz="UTC"))
            text = pc.strftime(seconds, format="%Y-%m-%dT%H:%M:%S+00:00")
            table = table.set_column(index, field.name, text)
    if path.suffix == ".jsonl":
        text = table.to_pandas().to_json(orient="records", lines=True, force_ascii=False)
        path.write_text(text, encoding="utf-8")
        return
    pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="needed"))
