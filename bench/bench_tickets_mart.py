"""Benchmark: where one day of the tickets mart goes, stage by stage.

    .venv/bin/python bench/bench_tickets_mart.py --data /tmp/b3/size-200000/data --day 2026-01-02

``--data`` is a data folder whose staging and state are already written up to the day
before ``--day``, such as the one ``bench_pipeline.py --workdir W`` leaves in
``W/size-N/data`` (run with ``CX_START_DATE`` set as that bench's drops start, 2026-01-01).
Computes the mart's day ``--repeats`` times after one warm-up (nothing is written) and
prints, as JSON, the best seconds of the whole compute and of each stage: loading the
carried state with the day's drops, picking the touched tickets, their facts (the status
durations inside), the day's activity, resolution time and advancing the state; and the
tables whose rows were not the same bits in every repeat (a rerun must rewrite its day
exactly; none expected).
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import functools
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

STAGES = {  # stage -> (module, owner of the function or None, function name)
    "load state and drops": ("cx_pipeline.lib.store.ticket_state", None, "load_live_tickets"),
    "late rows": ("cx_pipeline.lib.store.ticket_state", "LiveTickets", "with_late_rows"),
    "touched tickets": ("cx_pipeline.lib.store.ticket_state", "LiveTickets", "touched_on"),
    "facts": ("cx_pipeline.lib.metrics.tickets", None, "ticket_facts"),
    "activity": ("cx_pipeline.lib.metrics.tickets", None, "ticket_activity"),
    "resolution time": ("cx_pipeline.lib.metrics.core", None, "resolution_time"),
    "advance state": ("cx_pipeline.lib.store.ticket_state", "LiveTickets", "advance"),
}


def timed(spent: collections.Counter[str], stage: str, function: Callable) -> Callable:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[stage] += time.perf_counter() - started

    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--day", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ["CX_DATA_DIR"] = str(args.data)  # before the settings are read

    import importlib

    from cx_pipeline.defs import marts
    from cx_pipeline.defs.resources import MetricSettings
    from cx_pipeline.lib.metrics.core import Day
    from cx_pipeline.settings import SETTINGS

    spent: collections.Counter[str] = collections.Counter()
    for stage, (module_name, owner_name, name) in STAGES.items():
        # The mart calls these through their modules and classes, so it finds the timed ones.
        module = importlib.import_module(module_name)
        owner = getattr(module, owner_name) if owner_name else module
        setattr(owner, name, timed(spent, stage, getattr(owner, name)))
    mart = next(m for m in marts.MARTS if m.name == "tickets")
    day, settings = Day(args.day, SETTINGS.reporting_timezone), MetricSettings()
    first = mart.compute(args.data / "output", day, settings)  # warm-up: imports, caches
    best: dict[str, float] = {}
    differing: set[str] = set()
    for _ in range(args.repeats):
        spent.clear()
        started = time.perf_counter()
        again = mart.compute(args.data / "output", day, settings)
        spent["whole compute"] = time.perf_counter() - started
        best = {k: min(v, best.get(k, v)) for k, v in spent.items()}
        differing |= {table for table, frame in again.items() if not frame.equals(first[table])}
    report: dict[str, object] = {stage: round(seconds, 3) for stage, seconds in best.items()}
    # A rerun of a day must write the same bits: any table that came out otherwise.
    report["tables differing between repeats"] = sorted(differing)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
