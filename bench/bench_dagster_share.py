"""Benchmark: Dagster's share of a backfill, found by sampling where the run's thread is.

    .venv/bin/python bench/bench_dagster_share.py                  # the demo: 90 days of ~300
    .venv/bin/python bench/bench_dagster_share.py --days 2 --tickets-per-day 200000
    .venv/bin/python bench/bench_dagster_share.py --days 2 --tickets-per-day 50   # the suite's

Generates sample drops in a new work folder (bench_pipeline.py's), then runs the backfill
`cx-pipeline backfill` runs, in this process: one Dagster run with every step in process,
as the demo's. Meanwhile a thread looks at the main thread's stack every ``--interval-ms``.
A sample belongs to the innermost frame that is Dagster's (its packages, and the event log
of cx_pipeline/defs/instance.py) or the pipeline's (cx_pipeline): a library counts for
whoever called it (pandas, DuckDB, pyarrow for the pipeline; SQLAlchemy and SQLite for
Dagster's event log). Prints JSON: the wall seconds (sampling slows the run by a few per
cent), the samples, Dagster's share and the pipeline's share per module.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType

from bench_pipeline import START, Workspace

DAGSTER = "dagster"
OUR_EVENT_LOG = "cx_pipeline/defs/instance.py"


def owner(frame: FrameType | None) -> str:
    """``dagster`` or the pipeline's module (``lib/metrics/sql.py``) the frame runs for."""
    while frame is not None:
        path = frame.f_code.co_filename
        if "/cx_pipeline/" in path:
            module = path.rsplit("/cx_pipeline/", 1)[1]
            return DAGSTER if f"cx_pipeline/{module}" == OUR_EVENT_LOG else module
        if "site-packages/dagster" in path:  # dagster, dagster_shared, dagster_postgres, ...
            return DAGSTER
        frame = frame.f_back
    return "other"


class Sampler:
    """Counts, every ``interval`` seconds, who the main thread is working for."""

    def __init__(self, interval: float) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self._interval, self._done = interval, threading.Event()
        self._main = threading.main_thread().ident
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._done.wait(self._interval):
            self.counts[owner(sys._current_frames().get(self._main))] += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--tickets-per-day", type=float, default=300)
    parser.add_argument("--interval-ms", type=float, default=10)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    work = Workspace(args.workdir or Path(tempfile.mkdtemp(prefix="cx-bench-dagster-")))
    work.generate(args.days, args.tickets_per_day)
    os.environ.update(work.env)
    os.environ["CX_MAX_PROCESSES"] = "1"  # every step in this process, where it is sampled
    from cx_pipeline import cli  # reads the settings from the environment just set

    cli.prepare_dagster_home()
    last = START + dt.timedelta(days=args.days - 1)
    started = time.perf_counter()
    with Sampler(args.interval_ms / 1000) as sampler:
        failed = cli.run_backfill(START, last, chunk_days=args.days)
    seconds = time.perf_counter() - started
    if failed:
        raise SystemExit("the backfill failed")
    total = sum(sampler.counts.values())
    shares = {name: round(100 * n / total, 1) for name, n in sampler.counts.most_common()}
    report = {
        "days": args.days,
        "tickets_per_day": args.tickets_per_day,
        "backfill_s": round(seconds, 1),
        "samples": total,
        "dagster_share_pct": shares.pop(DAGSTER, 0.0),
        "pipeline_share_pct": shares,
        "workdir": str(work.root),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
