"""The CX report, opened in a real headless Chromium (Debian's chromium package)."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pytest
from pyarrow import feather

from cx_pipeline.lib.report import PERCENTILES_SQL, per_day_kept, report_path
from cx_pipeline.lib.store.parquet import write_partition
from cx_pipeline_tests.helpers import run_range

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--run-all-compositor-stages-before-draw", "--virtual-time-budget=15000"]  # fmt: skip


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM, "chromium is not installed (./dev test installs Debian's package)"
    return subprocess.run(
        [CHROMIUM, *FLAGS, *args], capture_output=True, text=True, timeout=180, check=True
    )


def test_the_report_draws_every_chart_without_a_script_error(
    tmp_path: Path, resources: dict[str, object]
) -> None:
    run_range(resources, "2026-01-01", "2026-01-03")  # marts, and the report with them
    output = Path(resources["paths"].output_dir)  # type: ignore[attr-defined]
    report = report_path(output, dt.date(2026, 1, 1), dt.date(2026, 1, 3))
    assert report.exists()
    text = report.read_text(encoding="utf-8")
    assert "<script src=" not in text and "<link" not in text  # viewable offline
    dom = chromium("--dump-dom", report.as_uri()).stdout
    body = re.search(r"<body([^>]*)>", dom)
    assert body is not None
    attributes = dict(re.findall(r'([\w-]+)="([^"]*)"', body.group(1)))
    assert int(attributes["data-charts"]) == 10
    assert attributes["data-drawn"] == attributes["data-charts"]  # every chart drew
    assert json.loads(attributes["data-errors"].replace("&quot;", '"')) == []
    screenshot = tmp_path / "report.png"
    chromium(f"--screenshot={screenshot}", "--window-size=1200,2000", report.as_uri())
    assert screenshot.stat().st_size > 20_000  # a picture, not a blank page


def test_report_command_refuses_a_backwards_range() -> None:
    from cx_pipeline.cli import run_report

    assert run_report(dt.date(2026, 1, 2), dt.date(2025, 12, 1)) == 2


def first_responses(day: dt.date, minutes: list[float]) -> pa.Table:
    """Tickets first answered on ``day`` (at noon UTC) after ``minutes``, none resolved."""
    noon = dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)
    return pa.table(
        {
            "first_response_at": pa.array([noon] * len(minutes), pa.timestamp("us", tz="UTC")),
            "first_response_minutes": pa.array(minutes, pa.float64()),
            "first_resolved_at": pa.array([None] * len(minutes), pa.timestamp("us", tz="UTC")),
            "first_resolution_minutes": pa.array([None] * len(minutes), pa.float64()),
        }
    )


def test_daily_percentiles_are_kept_and_recomputed_when_a_day_is_rewritten(
    tmp_path: Path,
) -> None:
    first, second = dt.date(2026, 3, 1), dt.date(2026, 3, 2)
    write_partition(tmp_path, "fct_tickets", first, first_responses(first, [60, 120]))
    write_partition(tmp_path, "fct_tickets", second, first_responses(second, [30, 30, 90]))

    def percentiles() -> pd.DataFrame:
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        return per_day_kept(con, tmp_path, "fct_tickets", PERCENTILES_SQL, first, second)

    # Hours: 1 and 2 -> median 1.5, p90 1 + 0.9 * (2 - 1) = 1.9; 0.5, 0.5, 1.5 -> median
    # 0.5, p90 at position 0.9 * 2 = 1.8 -> 0.5 + 0.8 * (1.5 - 0.5) = 1.3.
    figures = percentiles()
    assert figures["first response, median"].tolist() == pytest.approx([1.5, 0.5])
    assert figures["first response, p90"].tolist() == pytest.approx([1.9, 1.3])
    kept = list((tmp_path / "report").glob(".fct_tickets_*.arrow"))
    assert len(kept) == 1
    signature_of_second = feather.read_table(kept[0]).to_pandas().set_index("date")["signature"]

    # Another table's kept figures beside them (its name starts with this one's) stay.
    other = tmp_path / "report" / ".fct_tickets_latest_0123456789ab.arrow"
    other.write_bytes(b"")
    # A rerun rewrites the first day (1 h and 3 h): only that day is computed again.
    write_partition(tmp_path, "fct_tickets", first, first_responses(first, [60, 180]))
    figures = percentiles()
    assert figures["first response, median"].tolist() == pytest.approx([2.0, 0.5])
    assert figures["first response, p90"].tolist() == pytest.approx([2.8, 1.3])
    again = feather.read_table(kept[0]).to_pandas().set_index("date")["signature"]
    assert again[second] == signature_of_second[second]
    assert again[first] != signature_of_second[first]
    assert other.exists()

    # An unreadable kept file (a disk full, a hand edit) is computed afresh, not an error.
    kept[0].write_bytes(b"not an Arrow file")
    assert percentiles()["first response, median"].tolist() == pytest.approx([2.0, 0.5])
