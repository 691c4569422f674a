"""Faults and reruns: identical reruns, a process killed mid-write, raw files untouched,
late drops and late rows picked up."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cx_pipeline.defs.partitions import RANGE_END_TAG, RANGE_START_TAG
from cx_pipeline.defs.resources import CxPaths
from cx_pipeline.defs.sensors import late_drops_sensor, late_rows_sensor
from cx_pipeline.lib.store.parquet import partition_path, write_partition
from cx_pipeline.lib.store.tables import STAGED_TABLES
from cx_pipeline_tests.helpers import run_range


def fingerprint(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def parquet_files(folder: Path) -> dict[str, str]:
    # The Parquet output only: a rerun of one day also writes that day's report beside it.
    return {
        name: digest for name, digest in fingerprint(folder).items() if name.endswith(".parquet")
    }


def test_a_rerun_writes_byte_identical_parquet_and_leaves_raw_input_alone(
    tmp_path: Path, resources: dict[str, object], small_world: Path
) -> None:
    landing_before = fingerprint(small_world)
    mtimes = {p: p.stat().st_mtime_ns for p in small_world.rglob("*.csv")}
    run_range(resources, "2026-01-01", "2026-01-03")
    first = parquet_files(tmp_path / "output")
    run_range(resources, "2026-01-02", "2026-01-02")
    run_range(resources, "2026-01-01", "2026-01-03")
    assert parquet_files(tmp_path / "output") == first
    assert fingerprint(small_world) == landing_before
    assert {p: p.stat().st_mtime_ns for p in small_world.rglob("*.csv")} == mtimes


WRITER = """
import datetime as dt, sys
import pandas as pd
from pathlib import Path
from cx_pipeline.lib.store.publish import publish
from cx_pipeline.lib.store.tables import STG_REJECTS
from cx_pipeline.lib.store.warehouse import Warehouse

output, url, rows, repeat = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
frame = pd.DataFrame({
    "source": "tickets", "file": "f.csv", "row_number": range(1, rows + 1),
    "columns": "c", "rules": "r", "message": "m" * 200, "raw_row": "{}",
})
while True:  # rewrite the same day (until killed, unless asked to write once)
    publish(STG_REJECTS, dt.date(2026, 1, 1), frame, output, Warehouse(url), {"source": "tickets"})
    if repeat == "once":
        break
"""


def test_sigkill_mid_write_leaves_the_previous_good_output(tmp_path: Path) -> None:
    output, url = tmp_path / "output", f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    script = tmp_path / "writer.py"
    script.write_text(WRITER, encoding="utf-8")
    # A good first version: 1,000 rows, written by a process that finishes.
    subprocess.run([sys.executable, script, output, url, "1000", "once"], check=True, timeout=120)
    part = partition_path(output, "stg_rejects", dt.date(2026, 1, 1), "tickets.parquet")
    assert pq.read_table(part).num_rows == 1000
    # Then a writer of 2,000,000 rows, killed while it writes (a temporary file exists).
    big = subprocess.Popen([sys.executable, script, str(output), url, "2000000", "loop"])
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if any(p.name.endswith(".tmp") for p in part.parent.iterdir()):
            break
        time.sleep(0.01)
    else:
        big.kill()
        raise AssertionError("the big writer never started writing")
    os.kill(big.pid, signal.SIGKILL)
    big.wait()
    assert pq.read_table(part).num_rows == 1000  # the previous good file, readable
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as db:
        assert db.execute("SELECT COUNT(*) FROM stg_rejects").fetchone() == (1000,)


def test_late_and_corrected_drops_trigger_a_rerun_of_their_days(
    tmp_path: Path, small_world: Path
) -> None:
    paths = CxPaths(landing_dir=str(small_world), output_dir=str(tmp_path / "output"))
    with dg.instance_for_test() as instance:

        def tick(cursor: str | None) -> dg.SensorResult:
            context = dg.build_sensor_context(
                instance=instance, cursor=cursor, resources={"paths": paths}
            )
            return late_drops_sensor(context)  # type: ignore[return-value]

        first = tick(None)
        assert not first.run_requests  # the first look only records what is there
        # Nothing changed: nothing to do.
        assert not tick(first.cursor).run_requests
        # A corrected 01-01 tickets export lands: rerun 01-01 and the days after it that
        # have every drop (01-02, 01-03), capped at the newest complete day.
        tickets = small_world / "tickets" / "2026-01-01.csv"
        extra = "T8,C1,2026-01-01T15:00:00Z,web,login,low,g\n"
        tickets.write_text(tickets.read_text(encoding="utf-8") + extra, encoding="utf-8")
        later = tick(first.cursor)
        (request,) = later.run_requests
        assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == (
            "2026-01-01",
            "2026-01-03",
        )
        # A new day that is complete for every source triggers its own day.
        for source in ("tickets", "ticket_events", "survey_responses", "customers"):
            first_drop = (small_world / source / "2026-01-01.csv").read_text(encoding="utf-8")
            header = first_drop.splitlines()[0]
            (small_world / source / "2026-01-04.csv").write_text(header + "\n", encoding="utf-8")
        (request,) = tick(later.cursor).run_requests
        assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == (
            "2026-01-04",
            "2026-01-04",
        )
        assert json.loads(later.cursor)  # the cursor records every drop's signature


def test_staged_late_rows_trigger_a_rerun_that_restates_their_day(tmp_path: Path) -> None:
    output = tmp_path / "output"
    paths = CxPaths(landing_dir=str(tmp_path / "landing"), output_dir=str(output))

    def stage(table: str, arrival: str, column: str, instants: list[str]) -> None:
        spec = STAGED_TABLES[table]
        rows = pd.DataFrame({column: pd.to_datetime(instants, utc=True).as_unit("us")})
        for field in spec.arrow_schema:
            if field.name != column:
                rows[field.name] = "x" if pa.types.is_string(field.type) else None
        table_rows = pa.Table.from_pandas(rows[spec.arrow_schema.names], schema=spec.arrow_schema)
        write_partition(output, spec.name, dt.date.fromisoformat(arrival), table_rows)

    with dg.instance_for_test() as instance:

        def tick(cursor: str | None) -> dg.SensorResult:
            context = dg.build_sensor_context(
                instance=instance, cursor=cursor, resources={"paths": paths}
            )
            return late_rows_sensor(context)  # type: ignore[return-value]

        stage("tickets", "2026-01-01", "created_at", ["2026-01-01T10:00:00Z"])
        first = tick(None)
        assert not first.run_requests  # the first look only records what is there
        # The 01-02 drop holds a ticket created 01-01 23:30: restate 01-01 through 01-02.
        stage(
            "tickets", "2026-01-02", "created_at", ["2026-01-02T08:00:00Z", "2026-01-01T23:30:00Z"]
        )
        second = tick(first.cursor)
        (request,) = second.run_requests
        assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == (
            "2026-01-01",
            "2026-01-02",
        )
        # That rerun stages the same rows again: no new request, no loop.
        stage(
            "tickets", "2026-01-02", "created_at", ["2026-01-02T08:00:00Z", "2026-01-01T23:30:00Z"]
        )
        third = tick(second.cursor)
        assert not third.run_requests
        # An event three weeks old in the 01-09 drop: a day reads the 3 drops after it
        # (CX_LATE_ROW_DAYS), so the rerun starts at 01-06; older days cannot take it.
        stage("ticket_events", "2026-01-09", "event_at", ["2025-12-19T10:00:00Z"])
        (request,) = tick(third.cursor).run_requests
        assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == (
            "2026-01-06",
            "2026-01-09",
        )
