"""The command lines a data engineer uses, run for real as subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import sqlalchemy as sa

from cx_pipeline.lib.store.tables import DIALECTS, ddl_script
from cx_pipeline.lib.store.views import views_script
from cx_pipeline.settings import PROJECT_ROOT

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
    assert "3/3" in result.stderr  # the progress bar reached the end
    assert churn_days(tmp_path) == ["2026-01-01", "2026-01-02", "2026-01-03"]


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


def parquet_files(output: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(output)): path.read_bytes()
        for path in sorted(output.rglob("*.parquet"))
        if not path.name.startswith(".")
    }


def test_a_backfill_with_steps_in_processes_of_their_own_equals_one_process(
    tmp_path: Path, small_world: Path, postgres_url: str
) -> None:
    # CX_MAX_PROCESSES=2: independent steps run side by side in their own processes (Dagster's
    # multiprocess executor), writing to PostgreSQL, whose writers do not wait for each other.
    runs = {}
    for name, extra in (
        ("one", {}),
        ("many", {"CX_MAX_PROCESSES": "2", "CX_WAREHOUSE_URL": postgres_url}),
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
    one, many = (parquet_files(runs[name] / "data" / "output") for name in ("one", "many"))
    assert one.keys() == many.keys() and one == many  # byte for byte
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
