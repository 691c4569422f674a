"""Deployment, tested rather than described: the Dagster instance on PostgreSQL
(dagster-postgres), its daemon running a backfill the way the UI launches one, and a
backfill's steps run by two Celery workers (dagster-celery, a real Redis broker)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import sqlalchemy as sa

from cx_pipeline.definitions import ASSETS
from cx_pipeline.settings import PROJECT_ROOT
from cx_pipeline_tests.helpers import parquet_files
from cx_pipeline_tests.ui import backfill_as_the_ui_does, dagster_dev

BIN = Path(sys.executable).parent

ALL_ASSETS = [key.to_user_string() for asset in ASSETS for key in asset.keys]

INSTANCE_ON_POSTGRES = """\
# Runs, events and schedules in PostgreSQL (dagster-postgres), as docs/deployment.md shows.
storage:
  postgres:
    postgres_url:
      env: CX_DAGSTER_PG_URL
telemetry:
  enabled: false
"""


def instance_on_postgres(home: Path, postgres_url: str) -> dict[str, str]:
    """A Dagster home whose instance is in PostgreSQL; the environment that finds it."""
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(INSTANCE_ON_POSTGRES, encoding="utf-8")
    # dagster-postgres is written for psycopg2 (SQLAlchemy 2.1 would pick psycopg 3).
    libpq_url = sa.make_url(postgres_url).set(drivername="postgresql+psycopg2")
    return {
        "DAGSTER_HOME": str(home),
        "CX_DAGSTER_PG_URL": libpq_url.render_as_string(hide_password=False),
    }


def test_the_daemon_runs_a_backfill_with_the_instance_on_postgresql(
    tmp_path: Path, small_world: Path, postgres_url: str
) -> None:
    home = tmp_path / "home"
    env = {
        **os.environ,
        **instance_on_postgres(home, postgres_url),
        "CX_DATA_DIR": str(tmp_path / "data"),
        "CX_LANDING_DIR": str(small_world),
        "CX_REJECT_THRESHOLD": "0.5",
    }
    days = ["2026-01-01", "2026-01-02", "2026-01-03"]
    with dagster_dev(env) as port:
        assert backfill_as_the_ui_does(port, ALL_ASSETS, days) == "COMPLETED_SUCCESS"
    # The instance's history is in PostgreSQL: runs, their events, the daemon's heartbeats.
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        succeeded = conn.exec_driver_sql("SELECT COUNT(*) FROM runs WHERE status = 'SUCCESS'")
        assert succeeded.scalar_one() >= 1
        events = conn.exec_driver_sql(
            "SELECT COUNT(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'"
        )
        assert events.scalar_one() > 0
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM daemon_heartbeats").scalar_one() > 0
    engine.dispose()
    assert not list(home.glob("**/*.db"))  # nothing in SQLite files
    with duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True) as db:
        churn_days = db.execute(
            "SELECT CAST(date AS VARCHAR) FROM agg_daily_churn ORDER BY 1"
        ).fetchall()
    assert [row[0] for row in churn_days] == days


@contextmanager
def celery_workers(env: dict[str, str], logs: Path, count: int) -> Iterator[list[Path]]:
    """``count`` dagster-celery workers, one task at a time each, started as
    deploy/celery_worker.yaml says; yields their log files."""
    workers, files = [], []
    for number in range(1, count + 1):
        log = logs / f"worker{number}.log"
        files.append(log)
        command = [
            BIN / "dagster-celery", "worker", "start", "-A", "dagster_celery.app",
            "-y", PROJECT_ROOT / "deploy" / "celery_worker.yaml", "--name", f"cx{number}",
            "--", "--concurrency=1", f"--logfile={log}",
        ]  # fmt: skip
        # A session of its own: stopping it stops celery's pool processes too.
        workers.append(subprocess.Popen(command, env=env, start_new_session=True))
    try:
        yield files
    finally:
        for worker in workers:
            os.killpg(worker.pid, signal.SIGTERM)
        for worker in workers:
            worker.wait(timeout=60)


def test_two_celery_workers_run_a_backfill_that_equals_one_process(
    tmp_path: Path, small_world: Path, postgres_url: str, redis_url: str
) -> None:
    base = {**os.environ, "CX_LANDING_DIR": str(small_world), "CX_REJECT_THRESHOLD": "0.5"}
    backfill = [BIN / "cx-pipeline", "backfill", "--start", "2026-01-01", "--end", "2026-01-03"]
    one = {**base, "CX_DATA_DIR": str(tmp_path / "one"), "DAGSTER_HOME": str(tmp_path / "h1")}
    (tmp_path / "h1").mkdir()
    alone = subprocess.run(backfill, env=one, capture_output=True, text=True, timeout=900)
    assert alone.returncode == 0, alone.stderr[-3000:]
    # Workers and the backfill share the instance (PostgreSQL), the Parquet root and the
    # warehouse (PostgreSQL: writers on two workers do not wait for each other).
    celery = {
        **base,
        **instance_on_postgres(tmp_path / "h2", postgres_url),
        "CX_DATA_DIR": str(tmp_path / "celery"),
        "CX_WAREHOUSE_URL": postgres_url,
        "CX_CELERY_BROKER": redis_url,
        "C_FORCE_ROOT": "1",  # CI runs as root; the tasks are JSON, not pickles
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # the worker starts `celery`
    }
    # The instance's tables first: two workers starting at once on an empty database race
    # to create them ("type run_tags already exists"), as docs/deployment.md says.
    migrate = subprocess.run([BIN / "dagster", "instance", "migrate"], env=celery,
                             capture_output=True, text=True, timeout=300)  # fmt: skip
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    with celery_workers(celery, tmp_path, count=2) as logs:
        run = subprocess.run(backfill, env=celery, capture_output=True, text=True, timeout=900)
        assert run.returncode == 0, run.stderr[-3000:]
    # Each worker ran steps of the backfill, and together they wrote the same bytes.
    for log in logs:
        assert "succeeded in" in log.read_text(encoding="utf-8"), log.read_text()[-3000:]
    alone_files = parquet_files(tmp_path / "one" / "output")
    assert parquet_files(tmp_path / "celery" / "output") == alone_files
    assert len(alone_files) > 40  # every table, every day
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        days = conn.exec_driver_sql("SELECT CAST(date AS TEXT) FROM agg_daily_churn ORDER BY 1")
        assert [row[0] for row in days] == ["2026-01-01", "2026-01-02", "2026-01-03"]
        # The run's log names the worker each step ran on: both of them.
        workers = conn.execute(
            sa.text("SELECT event FROM event_logs WHERE event LIKE :text"),
            {"text": "%Executing steps%in celery worker%"},
        ).scalars()
        named = " ".join(workers)
        assert "cx1@" in named and "cx2@" in named
    engine.dispose()
