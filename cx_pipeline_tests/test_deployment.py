"""Deployment, tested rather than described: the Dagster instance on PostgreSQL
(dagster-postgres), its daemon running a backfill the way the UI launches one."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import sqlalchemy as sa

from cx_pipeline.definitions import ASSETS
from cx_pipeline_tests.ui import backfill_as_the_ui_does, dagster_dev

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


def test_the_daemon_runs_a_backfill_with_the_instance_on_postgresql(
    tmp_path: Path, small_world: Path, postgres_url: str
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(INSTANCE_ON_POSTGRES, encoding="utf-8")
    # dagster-postgres is written for psycopg2 (SQLAlchemy 2.1 would pick psycopg 3).
    libpq_url = sa.make_url(postgres_url).set(drivername="postgresql+psycopg2")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "CX_DATA_DIR": str(tmp_path / "data"),
        "CX_LANDING_DIR": str(small_world),
        "CX_REJECT_THRESHOLD": "0.5",
        "CX_DAGSTER_PG_URL": libpq_url.render_as_string(hide_password=False),
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
