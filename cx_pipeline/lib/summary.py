"""The demo's closing summary: rows per table, last week's headline figures, where things are."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cx_pipeline.lib.store.tables import ALL_TABLES
from cx_pipeline.lib.store.warehouse import Warehouse, display_url

HEADLINES_SQL = """
SELECT
    (SELECT SUM(tickets_created) FROM {topic} WHERE date BETWEEN :start AND :end)
        AS tickets_created,
    (SELECT SUM(first_response_minutes_sum) / NULLIF(SUM(tickets_first_responded), 0) / 60
       FROM {resolution} WHERE date BETWEEN :start AND :end) AS first_response_hours_mean,
    (SELECT SUM(resolution_minutes_sum) / NULLIF(SUM(tickets_resolved), 0) / 60
       FROM {resolution} WHERE date BETWEEN :start AND :end) AS resolution_hours_mean,
    (SELECT SUM(customers_churned) FROM {churn} WHERE date BETWEEN :start AND :end)
        AS customers_churned,
    (SELECT customers_at_end FROM {churn} WHERE date = :end) AS customers_at_end,
    (SELECT churn_rate_30d FROM {churn} WHERE date = :end) AS churn_rate_30d,
    (SELECT SUM(tickets_reopened) / CAST(NULLIF(SUM(tickets_solved), 0) AS FLOAT8)
       FROM {activity} WHERE date BETWEEN :start AND :end) AS reopen_rate,
    (SELECT SUM(resolved_first_contact) / CAST(NULLIF(SUM(tickets_resolved), 0) AS FLOAT8)
       FROM {activity} WHERE date BETWEEN :start AND :end) AS first_contact_resolution,
    (SELECT SUM(first_response_sla_met) / CAST(NULLIF(SUM(tickets_first_responded), 0) AS FLOAT8)
       FROM {activity} WHERE date BETWEEN :start AND :end) AS first_response_sla,
    (SELECT SUM(open_tickets) FROM {backlog} WHERE date = :end) AS backlog,
    (SELECT SUM(open_over_72h) FROM {backlog} WHERE date = :end) AS backlog_over_72h,
    (SELECT nps FROM {nps} WHERE date = :end AND window_days = 7 AND breakdown = 'all') AS nps,
    (SELECT responses FROM {nps} WHERE date = :end AND window_days = 7 AND breakdown = 'all')
        AS nps_responses,
    (SELECT csat_rate FROM {csat} WHERE date = :end AND window_days = 7 AND breakdown = 'all')
        AS csat_rate
"""
TOP_TOPICS_SQL = """
SELECT topic, SUM(tickets_created) AS tickets
FROM {topic} WHERE date BETWEEN :start AND :end
GROUP BY topic ORDER BY tickets DESC, topic LIMIT 3
"""


# A query a user can paste into a shell (duckdb comes with the project's environment).
QUERY_HINT = (
    '  .venv/bin/python -c "import duckdb; duckdb.sql(\\"SELECT * FROM read_parquet('
    "'{path}', hive_partitioning=true) ORDER BY date DESC LIMIT 5\\\").show()\""
)


def _share(value: object) -> str:
    return "n/a" if value is None else f"{float(value):.1%}"  # type: ignore[arg-type]


def summarise(
    warehouse: Warehouse, output_dir: Path, end: dt.date, start: dt.date | None = None
) -> str:
    """Rows per table and the headline figures of ``start..end`` (default: the week
    ending on ``end``)."""
    start = start or end - dt.timedelta(days=6)
    names = {
        "topic": warehouse.qualified("agg_daily_tickets_by_topic"),
        "resolution": warehouse.qualified("agg_daily_resolution_time"),
        "churn": warehouse.qualified("agg_daily_churn"),
        "activity": warehouse.qualified("agg_daily_ticket_activity"),
        "backlog": warehouse.qualified("agg_daily_backlog"),
        "nps": warehouse.qualified("agg_daily_nps"),
        "csat": warehouse.qualified("agg_daily_csat"),
    }
    params = {"start": start, "end": end}
    lines = ["", "Rows per table (warehouse):"]
    for table in ALL_TABLES:
        count = warehouse.read_frame(f"SELECT COUNT(*) AS n FROM {warehouse.qualified(table.name)}")
        lines.append(f"  {table.name:<28} {int(count['n'].iloc[0]):>10,}")
    headline = warehouse.read_frame(HEADLINES_SQL.format(**names), params).iloc[0]
    topics = warehouse.read_frame(TOP_TOPICS_SQL.format(**names), params)
    top = ", ".join(f"{row.topic} ({row.tickets:,})" for row in topics.itertuples())
    lines += [
        "",
        f"{start} .. {end}:",
        f"  tickets created            {int(headline['tickets_created'] or 0):,}",
        f"  top topics                 {top}",
        f"  mean first response        {headline['first_response_hours_mean']:.1f} h",
        f"  mean resolution time       {headline['resolution_hours_mean']:.1f} h",
        f"  first replies within SLA   {_share(headline['first_response_sla'])}",
        f"  reopen rate                {_share(headline['reopen_rate'])}",
        f"  first-contact resolution   {_share(headline['first_contact_resolution'])}",
        f"  backlog at end (> 72 h)    {int(headline['backlog'] or 0):,} "
        f"({int(headline['backlog_over_72h'] or 0):,})",
        f"  NPS (7 days)               {float(headline['nps'] or 0):+.1f} "
        f"from {int(headline['nps_responses'] or 0):,} responses",
        f"  CSAT (7 days)              {100 * float(headline['csat_rate'] or 0):.1f} %",
        f"  customers churned          {int(headline['customers_churned'] or 0):,}",
        f"  active customers at end    {int(headline['customers_at_end'] or 0):,}",
        f"  30-day churn rate          {float(headline['churn_rate_30d'] or 0):.2%}",
        "",
        f"Warehouse:  {display_url(str(warehouse.engine.url))}",
        f"Parquet:    {output_dir}/<table>/date=YYYY-MM-DD/*.parquet",
        "Open the DuckDB file in a BI tool, or query the Parquet data set, e.g.:",
        QUERY_HINT.format(path=f"{output_dir}/agg_daily_churn/*/*.parquet"),
    ]
    return "\n".join(lines)
