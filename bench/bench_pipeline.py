"""Benchmark: the pipeline against the same metric computed by plain DuckDB SQL.

    .venv/bin/python bench/bench_pipeline.py --days 7 --tickets-per-day 100000

Steps, each in its own process so peak memory (max RSS) is measured per step:
1. generate sample drops (`cx-pipeline generate`);
2. backfill every asset over the days (`cx-pipeline backfill`, one run per chunk);
3. the yardstick: agg_daily_resolution_time computed by one DuckDB SQL query straight
   over the landing CSV files;
4. a check that both agree (tickets resolved per day and channel x priority, and means).
Prints wall-clock seconds, peak RSS and throughput. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent

YARDSTICK_SQL = """
WITH tickets AS (
    SELECT * FROM read_csv('{landing}/tickets/*.csv', header = true, filename = true,
        columns = {{'ticket_id': 'VARCHAR', 'customer_id': 'VARCHAR',
                   'created_at': 'TIMESTAMPTZ', 'channel': 'VARCHAR', 'topic': 'VARCHAR',
                   'priority': 'VARCHAR', 'agent_group': 'VARCHAR',
                   'journey_stage': 'VARCHAR'}})
    QUALIFY row_number() OVER (PARTITION BY ticket_id ORDER BY filename DESC) = 1
),
events AS (
    SELECT DISTINCT ticket_id, event_at, event_type
    FROM read_csv('{landing}/ticket_events/*.csv', header = true,
        columns = {{'ticket_id': 'VARCHAR', 'event_at': 'TIMESTAMPTZ', 'event_type': 'VARCHAR',
                   'actor': 'VARCHAR', 'handle_seconds': 'DOUBLE'}})
),
firsts AS (
    SELECT ticket_id, min(event_at) FILTER (WHERE event_type IN ('solved', 'closed')) AS resolved_at
    FROM events GROUP BY ticket_id
),
resolved AS (
    SELECT CAST(timezone('UTC', resolved_at) AS DATE) AS date, channel, priority,
           epoch(resolved_at - created_at) / 60 AS minutes
    FROM firsts JOIN tickets USING (ticket_id)
    WHERE resolved_at IS NOT NULL AND resolved_at >= created_at
)
SELECT date, channel, priority, count(*) AS tickets_resolved,
       sum(minutes) AS resolution_minutes_sum, median(minutes) AS resolution_minutes_median,
       quantile_cont(minutes, 0.9) AS resolution_minutes_p90
FROM resolved GROUP BY ALL
"""


# Runs one command as its only child and prints that child's peak RSS (KiB).
_MEASURE = (
    "import resource, subprocess, sys; "
    "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run a command; return (seconds, its own peak RSS in MiB)."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, *command], env=env, capture_output=True, text=True
    )
    if result.returncode:  # say why, not only that it failed
        raise SystemExit(f"failed: {' '.join(command)[:200]}\n{result.stderr[-3000:]}")
    seconds = time.perf_counter() - started
    return seconds, int(result.stdout.split()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--tickets-per-day", type=float, default=100_000)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="cx-bench-"))
    start = dt.date(2026, 1, 1)
    end = start + dt.timedelta(days=args.days - 1)
    env = {
        **os.environ,
        "CX_DATA_DIR": str(work / "data"),
        "DAGSTER_HOME": str(work / "dagster_home"),
        "CX_START_DATE": start.isoformat(),
    }
    (work / "dagster_home").mkdir(parents=True, exist_ok=True)
    landing = work / "data" / "landing"

    gen_s, gen_mb = timed(
        [str(BIN / "cx-pipeline"), "generate", "--days", str(args.days),
         "--tickets-per-day", str(args.tickets_per_day), "--landing", str(landing)], env,
    )  # fmt: skip
    tickets = sum(1 for _ in open_lines(landing / "tickets"))
    events = sum(1 for _ in open_lines(landing / "ticket_events"))
    run_s, run_mb = timed(
        [str(BIN / "cx-pipeline"), "backfill", "--start", start.isoformat(),
         "--end", end.isoformat(), "--chunk-days", str(args.days)], env,
    )  # fmt: skip
    yard_script = (
        "import duckdb, json, sys, time; t = time.perf_counter(); "
        f"rows = duckdb.sql({YARDSTICK_SQL.format(landing=landing)!r}).df(); "
        "rows.to_parquet(sys.argv[1]); print(json.dumps(time.perf_counter() - t))"
    )
    yard_s, yard_mb = timed(
        [sys.executable, "-c", yard_script, str(work / "yardstick.parquet")], env
    )
    agreement = compare(work)
    print(json.dumps({
        "days": args.days, "tickets": tickets, "ticket_events": events,
        "generate_s": round(gen_s, 1), "generate_peak_mib": round(gen_mb),
        "pipeline_s": round(run_s, 1), "pipeline_peak_mib": round(run_mb),
        "pipeline_s_per_day": round(run_s / args.days, 2),
        "pipeline_tickets_per_s": round(tickets / run_s),
        "duckdb_sql_resolution_only_s": round(yard_s, 1), "duckdb_sql_peak_mib": round(yard_mb),
        **agreement,
        "workdir": str(work),
    }, indent=2))  # fmt: skip


def open_lines(folder: Path):
    for path in sorted(folder.glob("*.csv")):
        with path.open(encoding="utf-8") as handle:
            next(handle)
            yield from handle


def compare(work: Path) -> dict[str, object]:
    import duckdb
    import pandas as pd

    ours = (
        duckdb.connect(str(work / "data" / "warehouse.duckdb"), read_only=True)
        .sql(
            "SELECT date, channel, priority, tickets_resolved, resolution_minutes_sum, "
            "resolution_minutes_median, resolution_minutes_p90 "
            "FROM agg_daily_resolution_time WHERE tickets_resolved > 0"
        )
        .df()
    )
    theirs = pd.read_parquet(work / "yardstick.parquet")
    key = ["date", "channel", "priority"]
    for frame in (ours, theirs):
        frame["date"] = frame["date"].astype("str")
    merged = ours.merge(theirs, on=key, how="outer", suffixes=("", "_sql"), indicator=True)
    both = merged[merged["_merge"] == "both"]
    return {
        "agreement_rows_only_in_pipeline": int((merged["_merge"] == "left_only").sum()),
        "agreement_rows_only_in_sql": int((merged["_merge"] == "right_only").sum()),
        "agreement_max_count_diff": int(
            (both["tickets_resolved"] - both["tickets_resolved_sql"]).abs().max()
        ),
        "agreement_max_p90_diff_minutes": float(
            (both["resolution_minutes_p90"] - both["resolution_minutes_p90_sql"]).abs().max()
        ),
    }


if __name__ == "__main__":
    main()
