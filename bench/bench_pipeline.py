"""Benchmark: the pipeline against the same marts computed by plain DuckDB SQL.

    .venv/bin/python bench/bench_pipeline.py                       # 50k, 200k, 1M a day
    .venv/bin/python bench/bench_pipeline.py --sizes 200000 --days 3
    .venv/bin/python bench/bench_pipeline.py --small               # seconds; run by the suite

For each size (tickets a day), in one run:
1. generate sample drops (`cx-pipeline generate`);
2. alternating, ``--repeats`` times: the whole pipeline over the days (`cx-pipeline backfill`:
   raw, staging with validation and quarantine, carried state, every mart into Parquet and
   the DuckDB warehouse), then the yardstick: bench/baseline.sql, plain DuckDB SQL computing
   tickets by topic, resolution time, ticket activity, backlog, NPS, CSAT and churn from the
   same drops;
3. a check that both agree on those marts' figures;
4. each stage's share of the pipeline's time, from the Dagster run's step timings.
Then the history check: the same day's cost at day 2 and at day ``--history-days`` of
history. Every step runs in its own process, so its peak RSS is its own. Prints JSON.
Nothing here is a test; the suite runs ``--small`` only to keep this script working.
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
BASELINE_SQL = Path(__file__).with_name("baseline.sql")
START = dt.date(2026, 1, 1)

# Runs one command as its only child and prints that child's peak RSS (KiB).
_MEASURE = (
    "import resource, subprocess, sys; "
    "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)
_RUN_BASELINE = (
    "import duckdb, sys; from pathlib import Path; "
    "duckdb.connect().execute(Path(sys.argv[1]).read_text().format(landing=sys.argv[2], "
    "out=sys.argv[3]))"
)
# (mart, pipeline table, key columns, compared figure columns, pipeline query filter)
COMPARED = (
    ("tickets_by_topic", "agg_daily_tickets_by_topic", ["date", "topic"], ["tickets_created"],
     "tickets_created > 0"),
    ("resolution_time", "agg_daily_resolution_time", ["date", "channel", "priority"],
     ["tickets_resolved", "resolution_minutes_median"], "tickets_resolved > 0"),
    ("ticket_activity",
     "(SELECT date, channel, priority, sum(tickets_created) AS tickets_created, "
     "sum(tickets_solved) AS tickets_solved, sum(tickets_reopened) AS tickets_reopened "
     "FROM agg_daily_ticket_activity GROUP BY ALL)",
     ["date", "channel", "priority"], ["tickets_created", "tickets_solved", "tickets_reopened"],
     "tickets_created + tickets_solved + tickets_reopened > 0"),
    ("backlog", "agg_daily_backlog", ["date", "channel", "priority"], ["open_tickets"], "true"),
    ("nps", "agg_daily_nps", ["date"], ["responses", "nps"],
     "window_days = 1 AND breakdown = 'all'"),
    ("csat", "agg_daily_csat", ["date"], ["responses", "csat_rate"],
     "window_days = 1 AND breakdown = 'all'"),
    ("churn", "agg_daily_churn", ["date"], ["customers_churned"], "true"),
)  # fmt: skip


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run a command; return (seconds, its own peak RSS in MiB)."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, *command], env=env, capture_output=True, text=True
    )
    if result.returncode:  # say why, not only that it failed
        raise SystemExit(f"failed: {' '.join(command)[:200]}\n{result.stderr[-3000:]}")
    return time.perf_counter() - started, int(result.stdout.split()[-1]) / 1024


class Workspace:
    """One data directory and Dagster instance, and the commands that run in it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.landing = root / "data" / "landing"
        self.env = {
            **os.environ,
            "CX_DATA_DIR": str(root / "data"),
            "DAGSTER_HOME": str(root / "dagster_home"),
            "CX_START_DATE": START.isoformat(),
        }
        (root / "dagster_home").mkdir(parents=True, exist_ok=True)

    def generate(self, days: int, tickets_per_day: float) -> tuple[float, float]:
        return timed(
            [str(BIN / "cx-pipeline"), "generate", "--days", str(days),
             "--tickets-per-day", str(tickets_per_day), "--start", START.isoformat()],
            self.env,
        )  # fmt: skip

    def backfill(self, first: dt.date, last: dt.date) -> tuple[float, float]:
        chunk = (last - first).days + 1
        return timed(
            [str(BIN / "cx-pipeline"), "backfill", "--start", first.isoformat(),
             "--end", last.isoformat(), "--chunk-days", str(chunk)],
            self.env,
        )  # fmt: skip

    def baseline(self) -> tuple[float, float]:
        out = self.root / "baseline"
        out.mkdir(exist_ok=True)
        return timed(
            [sys.executable, "-c", _RUN_BASELINE, str(BASELINE_SQL), str(self.landing), str(out)],
            self.env,
        )

    def stage_seconds(self) -> dict[str, float]:
        """Seconds per stage (raw, staging, state, each mart) of the newest run, from the
        Dagster instance's step timings; 'dagster' is the run's time outside any step."""
        script = (
            "import dagster as dg, json; i = dg.DagsterInstance.get(); "
            "run = i.get_run_records(limit=1)[0]; "
            "steps = {s.step_key: s.end_time - s.start_time "
            "for s in i.get_run_step_stats(run.dagster_run.run_id)}; "
            "print(json.dumps({'steps': steps, 'run': run.end_time - run.start_time}))"
        )
        result = subprocess.run(
            [sys.executable, "-c", script], env=self.env, capture_output=True, text=True
        )
        timings = json.loads(result.stdout.strip().splitlines()[-1])
        stages: dict[str, float] = {}
        for step, seconds in timings["steps"].items():
            stage = step.split("_", 1)[0] if step.startswith(("raw_", "stg_")) else step
            stages[stage] = stages.get(stage, 0.0) + seconds
        stages["dagster"] = timings["run"] - sum(timings["steps"].values())
        return stages


def compare(work: Workspace) -> dict[str, object]:
    """Per mart: rows only on one side and the largest difference of each figure."""
    import duckdb
    import pyarrow.parquet as pq

    warehouse = duckdb.connect(str(work.root / "data" / "warehouse.duckdb"), read_only=True)
    found: dict[str, object] = {}
    for mart, table, key, figures, where in COMPARED:
        ours = warehouse.sql(f"SELECT {', '.join(key + figures)} FROM {table} t WHERE {where}")
        ours = ours.arrow()  # noqa: F841 - read by the query below
        theirs = pq.read_table(work.root / "baseline" / f"{mart}.parquet")  # noqa: F841
        joined = duckdb.sql(
            f"SELECT {', '.join(f'max(abs(o.{f} - b.{f})) AS {f}' for f in figures)}, "
            f"count(*) FILTER (WHERE b.{key[-1]} IS NULL) AS only_pipeline, "
            f"count(*) FILTER (WHERE o.{key[-1]} IS NULL) AS only_sql "
            f"FROM ours o FULL JOIN theirs b USING ({', '.join(key)})"
        ).fetchall()[0]
        found[mart] = dict(zip([*figures, "only_pipeline", "only_sql"], joined, strict=True))
    return found


def measure_size(work: Workspace, days: int, tickets_per_day: float, repeats: int) -> dict:
    gen_s, gen_mib = work.generate(days, tickets_per_day)
    last = START + dt.timedelta(days=days - 1)
    runs = []
    for _ in range(repeats):  # alternating, so both see the same machine state
        if (work.root / "data" / "output").exists():
            subprocess.run(["rm", "-rf", str(work.root / "data" / "output")], check=True)
            (work.root / "data" / "warehouse.duckdb").unlink(missing_ok=True)
        runs.append((work.backfill(START, last), work.baseline()))
    pipeline_s = min(run[0][0] for run in runs)
    baseline_s = min(run[1][0] for run in runs)
    stages = work.stage_seconds()
    total = sum(stages.values())
    return {
        "tickets_per_day": tickets_per_day,
        "days": days,
        "generate_s": round(gen_s, 1),
        "generate_peak_mib": round(gen_mib),
        "pipeline_s": round(pipeline_s, 1),
        "pipeline_s_per_day": round(pipeline_s / days, 2),
        "pipeline_peak_mib": round(max(run[0][1] for run in runs)),
        "baseline_sql_s": round(baseline_s, 1),
        "baseline_sql_peak_mib": round(max(run[1][1] for run in runs)),
        "ratio": round(pipeline_s / baseline_s, 1),
        "stage_share_pct": {
            stage: round(100 * seconds / total, 1)
            for stage, seconds in sorted(stages.items(), key=lambda item: -item[1])
        },
        "agreement": compare(work),
    }


def measure_history(work: Workspace, days: int, tickets_per_day: float) -> dict:
    """One day's time, peak memory and seconds per stage at day 2 and at day ``days`` of
    history (a stage whose seconds grow reads more than its day needs)."""
    work.generate(days, tickets_per_day)
    second, last = START + dt.timedelta(days=1), START + dt.timedelta(days=days - 1)
    work.backfill(START, second)

    def one_day(day: dt.date) -> dict[str, object]:
        seconds, peak_mib = work.backfill(day, day)
        stages = {stage: round(s, 2) for stage, s in sorted(work.stage_seconds().items())}
        return {"s": round(seconds, 1), "peak_mib": round(peak_mib), "stage_s": stages}

    at_day_2 = one_day(second)
    work.backfill(second + dt.timedelta(days=1), last - dt.timedelta(days=1))
    return {"tickets_per_day": tickets_per_day, "day_2": at_day_2, f"day_{days}": one_day(last)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes", default="50000,200000,1000000", help="tickets a day, comma-separated"
    )
    parser.add_argument("--days", type=int, default=3, help="days per size")
    parser.add_argument(
        "--repeats", type=int, default=1, help="alternating runs per size (best kept)"
    )
    parser.add_argument("--history-days", type=int, default=60, help="0: skip the history check")
    parser.add_argument("--history-tickets-per-day", type=float, default=20_000)
    parser.add_argument("--small", action="store_true", help="a quick run: 2 days of 500 tickets")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    if args.small:
        args.sizes, args.days, args.history_days, args.history_tickets_per_day = "500", 2, 4, 200

    root = args.workdir or Path(tempfile.mkdtemp(prefix="cx-bench-"))
    sizes = [float(size) for size in args.sizes.split(",")]
    report = {
        "sizes": [
            measure_size(Workspace(root / f"size-{int(size)}"), args.days, size, args.repeats)
            for size in sizes
        ],
        "history": measure_history(
            Workspace(root / "history"), args.history_days, args.history_tickets_per_day
        )
        if args.history_days
        else None,
        "workdir": str(root),
    }
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
