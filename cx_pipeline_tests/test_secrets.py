"""The warehouse password never reaches logs, asset metadata or error messages."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from cx_pipeline.cli import QUIET_RUN_CONFIG, RANGE_END_TAG, RANGE_START_TAG
from cx_pipeline.definitions import RUNNABLE
from cx_pipeline.defs.resources import WAREHOUSE_URL_ENV, default_resources

PASSWORD = "Sup3r-s3cret-pw"


def run_with_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, landing: Path, url: str
) -> tuple[dg.ExecuteInProcessResult, dg.DagsterInstance]:
    monkeypatch.setenv(WAREHOUSE_URL_ENV, url)
    monkeypatch.setenv("CX_LANDING_DIR", str(landing))
    monkeypatch.setenv("CX_OUTPUT_DIR", str(tmp_path / "output"))
    monkeypatch.setenv("CX_REJECT_THRESHOLD", "0.5")
    resources = default_resources()
    # The resource holds a reference to the variable, not its value.
    assert isinstance(resources["warehouse"].url, dg.EnvVar)  # type: ignore[attr-defined]
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        RUNNABLE,
        resources=resources,
        instance=instance,
        tags={RANGE_START_TAG: "2026-01-01", RANGE_END_TAG: "2026-01-02"},
        run_config=QUIET_RUN_CONFIG,
        raise_on_error=False,
    )
    return result, instance


def everything_recorded(instance: dg.DagsterInstance, run_id: str) -> str:
    records = instance.all_logs(run_id)
    return "\n".join(repr(record) for record in records)


def with_password(postgres_url: str) -> str:
    """The test database's URL for a role that has a password."""
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'writer') "
            f"THEN CREATE ROLE writer LOGIN SUPERUSER PASSWORD '{PASSWORD}'; END IF; END $$"
        )
    admin.dispose()
    url = sa.make_url(postgres_url).set(username="writer", password=PASSWORD)
    return url.render_as_string(hide_password=False)


def test_a_run_on_postgres_never_records_the_password(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, small_world: Path, postgres_url: str
) -> None:
    result, instance = run_with_env(monkeypatch, tmp_path, small_world, with_password(postgres_url))
    assert result.success
    assert PASSWORD not in everything_recorded(instance, result.run_id)
    assert os.environ[WAREHOUSE_URL_ENV].count(PASSWORD) == 1  # it was really in use


def test_a_failed_connection_does_not_show_the_password(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, small_world: Path
) -> None:
    url = f"postgresql+psycopg://writer:{PASSWORD}@127.0.0.1:1/none"  # nothing listens on port 1
    result, instance = run_with_env(monkeypatch, tmp_path, small_world, url)
    assert not result.success
    recorded = everything_recorded(instance, result.run_id)
    assert "127.0.0.1" in recorded  # the error is there, and readable
    assert PASSWORD not in recorded
