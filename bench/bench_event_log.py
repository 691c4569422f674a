"""Benchmark: what an event costs in the embedded instance's event log, Dagster's own SQLite
storage against the pooled one cx-pipeline configures (cx_pipeline/defs/instance.py).

    .venv/bin/python bench/bench_event_log.py            # 300 events of each kind
    .venv/bin/python bench/bench_event_log.py --events 50

Writes run events, asset materializations and asset check results into a fresh instance of
each kind, in one run and alternating, and prints milliseconds per event as JSON.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from cx_pipeline.defs.instance import PooledSqliteEventLogStorage, instance_yaml


def per_event_ms(storage_class: type[SqliteEventLogStorage], base: Path, events: int) -> dict:
    base.mkdir(parents=True)
    (base / "dagster.yaml").write_text(instance_yaml(base, storage_class), encoding="utf-8")
    with dg.DagsterInstance.from_config(str(base)) as instance:
        run = instance.add_run(DagsterRun(job_name="bench", run_id=base.name))
        kinds: dict[str, Callable[[int], object]] = {
            "run_event_ms": lambda n: instance.report_engine_event(f"event {n}", run),
            "materialization_ms": lambda n: instance.report_runless_asset_event(
                dg.AssetMaterialization("bench_table", partition=None, metadata={"rows": n})
            ),
            "check_evaluation_ms": lambda n: instance.report_runless_asset_event(
                dg.AssetCheckEvaluation(
                    asset_key=dg.AssetKey("bench_table"), check_name="bench_check",
                    passed=True, metadata={"rows": n},
                )
            ),
        }  # fmt: skip
        return {kind: ms_each(report, events) for kind, report in kinds.items()}


def ms_each(report: Callable[[int], object], events: int) -> float:
    """Milliseconds per call of ``report(n)``, over ``events`` calls in a row."""
    started = time.perf_counter()
    for n in range(events):
        report(n)
    return round(1000 * (time.perf_counter() - started) / events, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=2, help="alternating rounds (best kept)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="cx-bench-events-"))
    kinds = {"dagster_sqlite": SqliteEventLogStorage, "pooled_sqlite": PooledSqliteEventLogStorage}
    rounds: dict[str, list[dict]] = {kind: [] for kind in kinds}
    for attempt in range(args.repeats):
        for kind, storage in kinds.items():
            rounds[kind].append(per_event_ms(storage, root / f"{kind}-{attempt}", args.events))
    best = {
        kind: {key: min(r[key] for r in results) for key in results[0]}
        for kind, results in rounds.items()
    }
    print(json.dumps({"events": args.events, **best}, indent=2))


if __name__ == "__main__":
    main()
