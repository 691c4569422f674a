"""The command lines a data engineer uses, run for real as subprocesses."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import sqlalchemy as sa
from dagster._core.executor import child_process_executor
from dagster._core.storage.tags import PRIORITY_TAG

from cx_pipeline.defs.instance import PooledSqliteEventLogStorage
from cx_pipeline.lib.store.tables import DIALECTS, ddl_script
from cx_pipeline.lib.store.views import views_script
from cx_pipeline.settings import PROJECT_ROOT
from cx_pipeline_tests.helpers import parquet_files

BIN = Path(sys.executable).parent


def environment(tmp_path: Path, landing: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CX_DATA_DIR": str(tmp_path / "data"),
        "CX_LANDING_DIR": str(landing),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "CX_REJECT_THRESHOLD": "0.5",  # the small world's bad rows are on purpose
    }


def churn_days(tmp_path: Path) -> list[str]:
    with duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True) as db:
        rows = db.execute("SELECT CAST(date AS VARCHAR) FROM agg_daily_churn ORDER BY 1").fetchall()
    return [row[0] for row in rows]


def test_cx_pipeline_backfill_runs_a_range_with_progress(tmp_path: Path, small_world: Path) -> None:
    (tmp_path / "dagster_home").mkdir()
    result = subprocess.run(
        [BIN / "cx-pipeline", "backfill", "--start", "2026-01-01", "--end", "2026-01-03",
         "--chunk-days", "2"],
        env=environment(tmp_path, small_world), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    # The progress bar reached the end (it shows tenths: "0.3/3" is not the end).
    assert "3.0/3 days" in result.stderr
    assert churn_days(tmp_path) == ["2026-01-01", "2026-01-02", "2026-01-03"]
    # The new instance keeps its event log through the pooled storage, and reads it back.
    with dg.DagsterInstance.from_config(str(tmp_path / "dagster_home")) as instance:
        assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
        days = instance.get_materialized_partitions(dg.AssetKey("agg_daily_churn"))
        assert days == {"2026-01-01", "2026-01-02", "2026-01-03"}


def test_dagster_cli_materialises_a_partition_range(tmp_path: Path, small_world: Path) -> None:
    (tmp_path / "dagster_home").mkdir()
    result = subprocess.run(
        [BIN / "dagster", "asset", "materialize", "-m", "cx_pipeline.definitions",
         "--select", "*", "--partition-range", "2026-01-01...2026-01-03"],
        env=environment(tmp_path, small_world), capture_output=True, text=True, timeout=600,
        cwd=PROJECT_ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert churn_days(tmp_path) == ["2026-01-01", "2026-01-02", "2026-01-03"]
    # Definitions' executor, not Dagster's default (a process per step): one process.
    with dg.DagsterInstance.from_config(str(tmp_path / "dagster_home")) as instance:
        (run,) = instance.get_runs(limit=1)
        logs = [entry.user_message or "" for entry in instance.all_logs(run.run_id)]
        assert any("Executing steps in process" in message for message in logs)


def test_sql_files_match_the_schemas_and_views() -> None:
    views = (PROJECT_ROOT / "sql" / "views.sql").read_text(encoding="utf-8")
    assert views == views_script(), "run `./dev ddl --write` to refresh sql/views.sql"
    for dialect in DIALECTS:
        written = (PROJECT_ROOT / "sql" / dialect / "tables.sql").read_text(encoding="utf-8")
        assert written == ddl_script(dialect), f"run `./dev ddl --write` to refresh sql/{dialect}"


def test_selecting_one_table_of_a_mart_selects_the_whole_mart() -> None:
    from cx_pipeline.cli import whole_marts

    chosen = whole_marts(["stg_tickets", "agg_daily_backlog"])
    assert chosen == ["stg_tickets", "agg_daily_backlog", "fct_open_tickets"]
    assert whole_marts(["raw_tickets"]) == ["raw_tickets"]


def test_two_first_runs_at_once_on_a_fresh_instance(tmp_path: Path, small_world: Path) -> None:
    env = environment(tmp_path, small_world)
    command = [BIN / "cx-pipeline", "backfill", "--start", "2026-01-01", "--end", "2026-01-01",
               "--select", "raw_customers"]  # fmt: skip
    runs = [subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for run in runs:
        _, errors = run.communicate(timeout=600)
        assert run.returncode == 0, errors[-2000:]
        assert "already exists" not in errors


def test_a_backfill_with_steps_in_processes_of_their_own_equals_one_process(
    tmp_path: Path, small_world: Path, postgres_url: str
) -> None:
    # CX_MAX_PROCESSES=2: independent steps run side by side in their own processes (Dagster's
    # multiprocess executor), writing to PostgreSQL, whose writers do not wait for each other,
    # or to the DuckDB file, which each step opens for a transaction at a time.
    runs = {}
    for name, extra in (
        ("one", {}),
        ("many", {"CX_MAX_PROCESSES": "2", "CX_WAREHOUSE_URL": postgres_url}),
        ("many on duckdb", {"CX_MAX_PROCESSES": "2"}),
    ):
        folder = tmp_path / name
        (folder / "dagster_home").mkdir(parents=True)
        result = subprocess.run(
            [BIN / "cx-pipeline", "backfill", "--start", "2026-01-01", "--end", "2026-01-03"],
            env={**environment(folder, small_world), **extra},
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        runs[name] = folder
    one, many, many_on_duckdb = (
        parquet_files(runs[name] / "data" / "output") for name in ("one", "many", "many on duckdb")
    )
    assert one.keys() == many.keys() and one == many == many_on_duckdb  # byte for byte
    assert churn_days(runs["many on duckdb"]) == ["2026-01-01", "2026-01-02", "2026-01-03"]
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        days = conn.exec_driver_sql("SELECT CAST(date AS TEXT) FROM agg_daily_churn ORDER BY 1")
        assert [row[0] for row in days] == ["2026-01-01", "2026-01-02", "2026-01-03"]
    engine.dispose()
    # The run is the cx_daily job, with its steps in processes of their own.
    with dg.DagsterInstance.from_config(str(runs["many"] / "dagster_home")) as instance:
        (run,) = instance.get_runs(limit=1)
        assert run.job_name == "cx_daily"
        logs = instance.all_logs(run.run_id)
        assert any("multiprocess" in (entry.user_message or "") for entry in logs)


def test_the_demo_backfills_its_sample_days_with_two_steps_at_a_time(tmp_path: Path) -> None:
    # The demo's small days go faster with independent steps side by side; its backfill is
    # the `backfill` command run with CX_MAX_PROCESSES=2, unless the user set it.
    env = {key: value for key, value in os.environ.items() if key != "CX_MAX_PROCESSES"}
    env |= {"CX_DATA_DIR": str(tmp_path / "data"), "DAGSTER_HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [BIN / "cx-pipeline", "demo", "--days", "2"],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Backfilling 2026-01-01..2026-01-02 (CX_MAX_PROCESSES=2)" in result.stdout
    assert "tickets created" in result.stdout and "Report:" in result.stdout
    assert churn_days(tmp_path) == ["2026-01-01", "2026-01-02"]
    with dg.DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        (run,) = instance.get_runs(limit=1)
        logs = [entry.user_message or "" for entry in instance.all_logs(run.run_id)]
        assert any("multiprocess executor" in message for message in logs)


def test_steps_side_by_side_start_with_the_tickets_mart_inputs() -> None:
    # defs/schedules.py: a misspelt name in FIRST_STEPS would silently lose its priority.
    from cx_pipeline.definitions import ASSETS
    from cx_pipeline.defs.schedules import FIRST_STEPS

    priorities = {asset.node_def.name: asset.node_def.tags.get(PRIORITY_TAG) for asset in ASSETS}
    assert {name for name, priority in priorities.items() if priority == "1"} == set(FIRST_STEPS)


def test_the_run_takes_a_step_s_events_without_waiting_20_ms_for_each() -> None:
    # defs/schedules.py shortens the wait of Dagster's multiprocess executor on a step that
    # has no event to give; it must still be the constant Dagster's poll waits for.
    import cx_pipeline.defs.schedules  # noqa: F401

    assert child_process_executor.TICK == 0.002
    assert "timeout=TICK" in inspect.getsource(child_process_executor._poll_for_event)


def cli(tmp_path: Path, landing: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BIN / "cx-pipeline", *args], env=environment(tmp_path, landing),
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_validate_prints_rejects_and_writes_nothing(tmp_path: Path, small_world: Path) -> None:
    # 01-01's survey answers: R2 is an NPS of 11.
    drop = small_world / "survey_responses" / "2026-01-01.csv"
    checked = cli(tmp_path, small_world, "validate", str(drop), "--source", "survey_responses")
    assert checked.returncode == 1
    (line,) = checked.stdout.splitlines()
    assert line.startswith(f"{drop} row 2: score: score outside the response's scale")
    assert "3 rows, 2 valid, 1 rejected" in checked.stderr
    assert not (tmp_path / "data").exists()  # nothing written
    good = tmp_path / "2026-01-05.csv"
    good.write_text(drop.read_text(encoding="utf-8").replace(",11,", ",10,"), encoding="utf-8")
    assert (
        cli(tmp_path, small_world, "validate", str(good), "--source", "survey_responses").returncode
        == 0
    )
    # A usage error is exit 2; an unreadable file, 1 with one line.
    assert cli(tmp_path, small_world, "validate", str(good), "--source", "orders").returncode == 2
    missing = cli(
        tmp_path, small_world, "validate", str(tmp_path / "nope.csv"), "--source", "tickets"
    )
    assert missing.returncode == 1 and len(missing.stderr.splitlines()) == 1


def test_rejects_status_summary_and_a_failed_day_in_one_line(
    tmp_path: Path, small_world: Path
) -> None:
    (tmp_path / "dagster_home").mkdir()
    ran = cli(tmp_path, small_world, "backfill", "--start", "2026-01-01", "--end", "2026-01-02")
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "2.0/2 days" in ran.stderr  # the bar counts days (and moves within a run)
    rejects = cli(
        tmp_path, small_world, "rejects", "--day", "2026-01-01", "--source", "survey_responses"
    )
    assert rejects.returncode == 0
    assert "row 2: score: score outside the response's scale" in rejects.stdout
    # 01-03 has drops but was not run; a changed 01-01 events drop makes 01-01 stale.
    events = small_world / "ticket_events" / "2026-01-01.csv"
    later = events.stat().st_mtime + 60
    os.utime(events, (later, later))
    status = cli(tmp_path, small_world, "status", "--start", "2026-01-01", "--end", "2026-01-03")
    assert status.returncode == 1
    lines = dict(line.split(": ", 1) for line in status.stdout.splitlines())
    assert lines.keys() == {"2026-01-01", "2026-01-03"}
    assert lines["2026-01-01"] == "drop(s) changed since the day ran: ticket_events"
    assert lines["2026-01-03"].startswith("not computed: ")
    summary = cli(tmp_path, small_world, "summary", "--start", "2026-01-01", "--end", "2026-01-02")
    assert summary.returncode == 0 and "2026-01-01 .. 2026-01-02:" in summary.stdout
    # A day that fails says why in one line, and the exit code says failed.
    (small_world / "tickets" / "2026-01-03.csv").write_text("", encoding="utf-8")
    failed = cli(tmp_path, small_world, "backfill", "--start", "2026-01-03", "--end", "2026-01-03")
    assert failed.returncode == 1
    (message,) = [line for line in failed.stderr.splitlines() if "backfill failed" in line]
    assert "raw_tickets: " in message and "2026-01-03.csv is empty" in message
    assert len(failed.stderr) < 3000  # no traceback
    status = cli(tmp_path, small_world, "status", "--start", "2026-01-03", "--end", "2026-01-03")
    assert "latest run failed" in status.stdout
