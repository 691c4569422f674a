"""The benchmarks' small modes, so the bench/ scripts keep working (no timing asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from cx_pipeline.settings import PROJECT_ROOT


def test_bench_small_mode_runs_and_both_sides_agree(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "bench" / "bench_pipeline.py"), "--small",
         "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    (size,) = report["sizes"]
    assert size["ratio"] > 0 and size["pipeline_peak_mib"] > 0
    assert {"stg", "raw", "mart_tickets", "dagster"} <= set(size["stage_share_pct"])
    for mart, found in size["agreement"].items():
        assert found["only_pipeline"] == found["only_sql"] == 0, mart
        for figure, difference in found.items():
            assert abs(difference) < 1e-9, (mart, figure)
    assert set(report["history"]) == {"tickets_per_day", "day_2", "day_4"}
    assert {"mart_tickets", "mart_surveys"} <= set(report["history"]["day_4"]["stage_s"])
    # One tickets-mart day, stage by stage, on the drops and state the bench left.
    stages = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "bench" / "bench_tickets_mart.py"),
         "--data", str(tmp_path / f"size-{int(size['tickets_per_day'])}" / "data"),
         "--day", "2026-01-02", "--repeats", "1"],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "CX_START_DATE": "2026-01-01"},
    )  # fmt: skip
    assert stages.returncode == 0, stages.stderr[-3000:]
    report = json.loads(stages.stdout)
    assert {"load state and drops", "facts", "advance state", "whole compute"} <= set(report)
    assert report["tables differing between repeats"] == []


def test_dagster_share_small_mode_attributes_every_sample(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "bench" / "bench_dagster_share.py"), "--days", "2",
         "--tickets-per-day", "50", "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    shares = report["pipeline_share_pct"]
    assert 0 < report["dagster_share_pct"] < 100 and report["samples"] > 0
    # Every stage's code is seen: staging, the marts' maths, the Parquet store.
    assert {"lib/ingest/staging.py", "lib/metrics/sql.py", "lib/store/parquet.py"} <= set(shares)
