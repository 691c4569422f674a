"""Shared fixtures: hand-made drops, real warehouses (a DuckDB file and a PostgreSQL server)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from cx_pipeline.defs.resources import (
    CxPaths,
    MetricSettings,
    StagingPolicy,
    WarehouseResource,
)
from cx_pipeline_tests.small_world import write_small_world


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        raise RuntimeError(f"PostgreSQL's {name} not found: `./dev test` installs it")
    return found[-1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres_user(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; CI runs as root.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A real PostgreSQL server on loopback for this test session; yields its admin URL."""
    # Not under pytest's tmp dirs: those are private to root, and the server runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="cx-postgres-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    port = _free_port()
    subprocess.run(
        _as_postgres_user(
            [_pg_bin("initdb"), "-D", str(data), "-U", "cx", "-A", "trust", "-E", "UTF8"]
        ),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_postgres_user(
            [
                _pg_bin("pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(root / "log"),
                "-w",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://cx@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres_user([_pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A fresh, empty database on the session's server."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()
    return postgres_server.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=["duckdb", "postgresql"])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each warehouse test runs against both engines."""
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def small_world(tmp_path: Path) -> Path:
    return write_small_world(tmp_path / "landing")


def make_resources(landing: Path, root: Path, **policy: object) -> dict[str, object]:
    """Resources of a run over ``landing``, writing under ``root`` (DuckDB file warehouse).

    The small world has one bad row in three or four on purpose: its runs allow 50 %.
    """
    policy = {"reject_threshold": 0.5, **policy}
    return {
        "paths": CxPaths(landing_dir=str(landing), output_dir=str(root / "output")),
        "warehouse": WarehouseResource(url=f"duckdb:///{root / 'warehouse.duckdb'}"),
        "policy": StagingPolicy(**policy),  # type: ignore[arg-type]
        "metric_settings": MetricSettings(id_salt="test-salt"),
    }


@pytest.fixture
def resources(tmp_path: Path, small_world: Path) -> dict[str, object]:
    """Resources of a run over the small world."""
    return make_resources(small_world, tmp_path)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis server (Debian's redis-server) on loopback: the Celery broker."""
    server = shutil.which("redis-server")
    if server is None:
        raise RuntimeError("redis-server not found: `./dev test` installs it")
    root = Path(tempfile.mkdtemp(prefix="cx-redis-"))
    port = _free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(root)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(100):  # up within a second or two
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)
