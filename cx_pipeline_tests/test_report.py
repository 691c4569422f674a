"""The CX report, opened in a real headless Chromium (Debian's chromium package)."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from pathlib import Path

from cx_pipeline.lib.report import report_path
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
