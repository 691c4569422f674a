"""The embedded Dagster instance's event log: Dagster's SQLite storage, connections kept open.

Dagster's ``SqliteEventLogStorage`` opens a new engine and connection for every event it
writes (an asset event twice: its run's file and the cross-run index). A day of the
pipeline reports ~45 events (a materialization per table, a result per check), so a
backfill of small days spent a quarter of its time there. This subclass keeps one engine
per file (the index's and the newest runs') and lets SQLite sync its write-ahead log at
checkpoints only (``synchronous=NORMAL``: safe from corruption; a power cut may lose the
last events, never the data, which is in Parquet and the warehouse). An event then costs
a fifth of what it did (``bench/bench_event_log.py`` measures both).

``cx-pipeline`` writes it into a new ``$DAGSTER_HOME/dagster.yaml`` (cli.py). Production
keeps the instance on PostgreSQL (docs/deployment.md), which pools its connections itself.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)

# Run files whose engines stay open besides the index's (a long-lived webserver reads many).
OPEN_RUN_FILES = 4


def instance_yaml(home: Path, storage: type[SqliteEventLogStorage] | None = None) -> str:
    """A new instance's ``dagster.yaml``: runs and schedules where Dagster puts them by
    default, the event log in its default folder through ``storage`` (the pooled one
    unless told; bench/bench_event_log.py compares it with Dagster's own)."""
    storage = storage or PooledSqliteEventLogStorage
    return f"""telemetry:
  enabled: false
event_log_storage:
  module: {storage.__module__}
  class: {storage.__name__}
  config:
    base_dir: {home.resolve() / "history" / "runs"}
"""


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` with its engines kept open instead of one per event."""

    def __init__(self, base_dir: str, inst_data: Any = None) -> None:
        self._engines: OrderedDict[str, sa.Engine] = OrderedDict()
        # Tables and asset-key columns seen in the index: Dagster looks them up for every
        # asset event (a new engine and file open each time). Migrations only add them, so
        # one seen stays; one missing is looked up again.
        self._seen: set[tuple[str, str]] = set()  # ("table" | "column", name)
        super().__init__(base_dir, inst_data)

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: Any, config_value: Mapping[str, Any]
    ) -> PooledSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[sa.Connection]:
        with self._db_lock, self._engine(shard).connect() as conn, conn.begin():
            yield conn

    def _engine(self, shard: str) -> sa.Engine:
        engine = self._engines.get(shard)
        if engine is not None:
            self._engines.move_to_end(shard)
            return engine
        engine = sa.create_engine(
            self.conn_string_for_shard(shard),
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
        )
        sa.event.listen(engine, "connect", _sync_at_checkpoints)
        if shard not in self._initialized_dbs:
            self._initdb(engine)
            self._initialized_dbs.add(shard)
        self._engines[shard] = engine
        runs = [name for name in self._engines if name != INDEX_SHARD_NAME]
        for name in runs[:-OPEN_RUN_FILES]:
            self._engines.pop(name).dispose()
        return engine

    def has_table(self, table_name: str) -> bool:
        look_up = super().has_table
        return self._seen_or(("table", table_name), lambda: look_up(table_name))

    def _has_asset_key_col_on_connection(self, conn: sa.Connection, column_name: str) -> bool:
        look_up = super()._has_asset_key_col_on_connection
        return self._seen_or(("column", column_name), lambda: look_up(conn, column_name))

    def _seen_or(self, key: tuple[str, str], look_up: Callable[[], bool]) -> bool:
        """True once ``key`` has been seen; until then, what ``look_up()`` finds."""
        if key not in self._seen and look_up():
            self._seen.add(key)
        return key in self._seen

    def wipe(self) -> None:
        # Dagster deletes the run files: close them first, then they reopen as new files.
        self._close_engines()
        self._seen.clear()
        super().wipe()

    def dispose(self) -> None:
        super().dispose()
        self._close_engines()

    def _close_engines(self) -> None:
        while self._engines:
            self._engines.popitem()[1].dispose()


def _sync_at_checkpoints(dbapi_connection: Any, _record: Any) -> None:
    # Dagster's files are in write-ahead-log mode, where NORMAL cannot corrupt them.
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")
