"""Loading tables into the SQL warehouse (DuckDB by default, PostgreSQL in production).

A day's rows are replaced in one transaction (delete the day, bulk-load the
new rows), so a failed load leaves the previous rows and a rerun never
duplicates. Loads use each engine's bulk path: DuckDB inserts straight from an
Arrow table, PostgreSQL reads CSV through COPY. The URL, which may carry a
password, is never put in a message; ``display_url`` hides the password.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from cx_pipeline.lib.store.parquet import PARTITION_COLUMN
from cx_pipeline.lib.store.tables import TableSpec, sql_text
from cx_pipeline.lib.store.views import VIEW_COLUMNS, View, column_description, views_of

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_COPY_BATCH_ROWS = 200_000
T = TypeVar("T")


_PROCESS_LOCKS: dict[str, threading.Lock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()
# (warehouse URL, schema, table) whose DDL and views this process has ensured: a run's
# days and assets check each table once, not once per day (tables are never dropped
# behind a running pipeline's back).
_PREPARED: set[tuple[str, str | None, str]] = set()
# The fingerprint of each table's DDL and views as last ensured, kept in the warehouse:
# a process whose tables are already as the code defines them skips the catalog look-ups,
# view rebuilds and comments (about a second a run, paid by every step's process).
DDL_FINGERPRINTS = "_cx_ddl_fingerprints"
_FINGERPRINTS_COMMENT = (
    "The pipeline's own record: a hash of the DDL and views each table was last made with "
    "(delete a row to have them made again). Not for reports."
)
# Per (warehouse URL, schema): the fingerprints read from it, once per process.
_RECORDED: dict[tuple[str, str | None], dict[str, str]] = {}
# Two processes creating one table at once collide in PostgreSQL's catalog ("duplicate key
# value violates unique constraint pg_type_typname_nsp_index"): DDL takes turns.
DDL_LOCK = "cx_pipeline/ddl"


@contextmanager
def _process_lock(key: str | None) -> Iterator[None]:
    if key is None:
        yield
        return
    with _PROCESS_LOCKS_GUARD:
        lock = _PROCESS_LOCKS.setdefault(key, threading.Lock())
    with lock:
        yield


def checked_identifier(name: str, what: str = "identifier") -> str:
    """Refuse anything but a plain SQL identifier (names from settings reach SQL text)."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"invalid {what} {name!r}: use letters, digits and _ only")
    return name


def display_url(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)


class Warehouse:
    # A step holds its connection while it walks its days; another process waiting for the
    # DuckDB file waits that long (PostgreSQL has no file lock: writers run side by side).
    # With ``shared_by_processes`` (steps side by side, each in its own process) a DuckDB
    # step holds the file only for each transaction, so the others compute meanwhile.
    def __init__(
        self,
        url: str,
        schema: str | None = None,
        lock_timeout_s: float = 3600,
        shared_by_processes: bool = False,
    ):
        parsed = sa.make_url(url)
        self.dialect = parsed.get_backend_name()
        if self.dialect not in ("duckdb", "postgresql"):
            raise ValueError(f"unsupported warehouse {self.dialect!r}: use duckdb or postgresql")
        self.schema = checked_identifier(schema, "schema name") if schema else None
        self._lock_timeout_s = lock_timeout_s
        if self.dialect == "duckdb" and parsed.database not in (None, "", ":memory:"):
            # The first asset to run may be one that reads no files (the calendar).
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # No pool: a DuckDB file is locked by the process holding it open, and
        # Dagster runs steps in separate processes.
        self.engine = sa.create_engine(parsed, poolclass=NullPool)
        self._session: Connection | None = None
        self._holds_sessions = not (shared_by_processes and self.dialect == "duckdb")

    def qualified(self, table: str) -> str:
        checked_identifier(table, "table name")
        return f"{self.schema}.{table}" if self.schema else table

    @contextmanager
    def session(self) -> Iterator[None]:
        """Hold one connection for several transactions (e.g. a step's days): opening a
        DuckDB file costs tens of milliseconds. The file stays locked for other processes
        while one is open, so a warehouse shared by processes holds none between
        transactions."""
        if self._session is not None or not self._holds_sessions:
            yield
            return
        with self._connection() as conn:
            self._session = conn
            try:
                yield
            finally:
                self._session = None

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.session(), ExitStack() as stack:
            conn = self._session or stack.enter_context(self._connection())
            with conn.begin():
                yield conn

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        # DuckDB lets one process at a time open a file for writing (its file
        # lock); inside that process, writers to one file take turns here, since
        # two delete-then-insert transactions on an empty day would not conflict.
        with (
            _process_lock(str(self.engine.url) if self.dialect == "duckdb" else None),
            self._retry_while_locked(self.engine.connect) as conn,
        ):
            yield conn

    def _retry_while_locked(self, connect: Callable[[], T]) -> T:
        # Another process holding the DuckDB file: wait for it rather than fail.
        deadline = time.monotonic() + self._lock_timeout_s
        while True:
            try:
                return connect()
            except sa.exc.OperationalError as exc:
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def ensure_table(self, spec: TableSpec) -> None:
        """Create the table and its roll-up views on first use in this process; add columns
        a newer version introduced and drop those it renamed or removed (e.g. csat_pct,
        now csat_rate: a backfill refills the new column for past days). Skipped when the
        warehouse records that the table and its views were last made by the same DDL."""
        url = self.engine.url.render_as_string(hide_password=False)
        if (url, self.schema, spec.name) in _PREPARED:
            return
        fingerprint = self._ddl_fingerprint(spec)
        recorded = self._recorded_fingerprints(url)
        if recorded.get(spec.name) != fingerprint:
            self._migrate(spec)
            self.replace_views(views_of(spec.name))
            self._record_fingerprint(spec.name, fingerprint)
            recorded[spec.name] = fingerprint
        _PREPARED.add((url, self.schema, spec.name))

    def _ddl_fingerprint(self, spec: TableSpec) -> str:
        """A hash of everything ensure_table makes: the table's DDL and comments, its views'
        SQL and descriptions, and the descriptions their columns may take."""
        views = [
            (v.name, v.sql(self.qualified(v.table)), v.description) for v in views_of(spec.name)
        ]
        made = [spec.create_sql(self.dialect, self.qualified(spec.name)), views, VIEW_COLUMNS]
        return hashlib.sha256(json.dumps(made, sort_keys=True).encode()).hexdigest()

    def _recorded_fingerprints(self, url: str) -> dict[str, str]:
        """The fingerprints of the tables that exist, read once per process."""
        key = (url, self.schema)
        if key not in _RECORDED:
            with self.transaction() as conn:
                existing = self._existing_tables(conn)
                store = self.qualified(DDL_FINGERPRINTS)
                rows: Iterable[Any] = (
                    conn.exec_driver_sql(f"SELECT table_name, fingerprint FROM {store}")
                    if DDL_FINGERPRINTS in existing
                    else []
                )
                # A table dropped by hand is made again, whatever its fingerprint says.
                _RECORDED[key] = {name: value for name, value in rows if name in existing}
        return _RECORDED[key]

    def _record_fingerprint(self, table: str, fingerprint: str) -> None:
        store = self.qualified(DDL_FINGERPRINTS)
        with self.transaction() as conn:
            self._lock(conn, DDL_LOCK)
            self._run_ddl(
                conn,
                f"CREATE TABLE IF NOT EXISTS {store} "
                "(table_name VARCHAR(63) NOT NULL, fingerprint VARCHAR(64) NOT NULL)",
            )
            self._run_ddl(conn, f"COMMENT ON TABLE {store} IS {sql_text(_FINGERPRINTS_COMMENT)}")
            conn.execute(sa.text(f"DELETE FROM {store} WHERE table_name = :t"), {"t": table})
            conn.execute(
                sa.text(f"INSERT INTO {store} VALUES (:t, :f)"), {"t": table, "f": fingerprint}
            )

    def _existing_tables(self, conn: Connection) -> set[str]:
        query = sa.text(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = COALESCE(:schema, current_schema())"
        )
        return {row[0] for row in conn.execute(query, {"schema": self.schema})}

    def _migrate(self, spec: TableSpec) -> None:
        """Create the table, or bring an existing one to the spec's columns."""
        with self.transaction() as conn:
            self._lock(conn, DDL_LOCK)
            if self.schema:
                conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
            have = self._existing_columns(conn, spec.name)
            if not have:
                for statement in spec.create_sql(self.dialect, self.qualified(spec.name)):
                    self._run_ddl(conn, statement)
            else:
                table = self.qualified(spec.name)
                for column in spec.all_columns:
                    if column.name not in have:
                        self._run_ddl(
                            conn,
                            f"ALTER TABLE {table} "
                            f"ADD COLUMN {column.name} {spec.sql_type(self.dialect, column)}",
                        )
                gone = sorted(have - {column.name for column in spec.all_columns})
                for view in views_of(spec.name) if gone else ():
                    # A view may read the column; it is recreated below.
                    self._run_ddl(conn, f"DROP VIEW IF EXISTS {self.qualified(view.name)}")
                for name in gone:
                    self._run_ddl(conn, f"ALTER TABLE {table} DROP COLUMN {name}")

    def _lock(self, conn: Connection, key: str) -> None:
        """On PostgreSQL, hold ``key``'s lock until the transaction ends: processes (Celery
        workers, parallel steps) take turns. A DuckDB file has one writing process."""
        if self.dialect == "postgresql":
            conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key}
            )

    def _run_ddl(self, conn: Connection, statement: str) -> None:
        # psycopg reads % as a placeholder even without parameters (comments say "95 %").
        conn.exec_driver_sql(
            statement.replace("%", "%%") if self.dialect == "postgresql" else statement
        )

    def replace_views(self, views: Sequence[View]) -> None:
        """(Re)create the roll-up views over a table, with their comments."""
        with self.transaction() as conn:
            self._lock(conn, DDL_LOCK)
            for view in views:
                name = self.qualified(view.name)
                select = view.sql(self.qualified(view.table))
                for statement in (
                    f"DROP VIEW IF EXISTS {name}",
                    f"CREATE VIEW {name} AS {select}",
                    f"COMMENT ON VIEW {name} IS {sql_text(view.description)}",
                ):
                    self._run_ddl(conn, statement)
                for column in sorted(self._existing_columns(conn, view.name)):
                    description = column_description(view, column)
                    if description:
                        self._run_ddl(
                            conn, f"COMMENT ON COLUMN {name}.{column} IS {sql_text(description)}"
                        )

    def _existing_columns(self, conn: Connection, table: str) -> set[str]:
        # information_schema works alike on DuckDB and PostgreSQL.
        query = sa.text(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = :table AND table_schema = COALESCE(:schema, current_schema())"
        )
        rows = conn.execute(query, {"table": table, "schema": self.schema})
        return {row[0] for row in rows}

    def replace_partition(
        self, spec: TableSpec, day: dt.date, data: pa.Table, within: dict[str, str] | None = None
    ) -> None:
        """Replace the day's rows of a table with ``data``, in one transaction.

        ``within`` narrows what is replaced to the day's rows with these column
        values (stg_rejects keeps one slice per source).
        """
        self.replace_days(spec, {day: data}, within)

    def replace_days(
        self,
        spec: TableSpec,
        days: Mapping[dt.date, pa.Table],
        within: dict[str, str] | None = None,
        before_commit: Callable[[], None] | None = None,
    ) -> None:
        """``replace_partition`` for several days in one transaction: one DELETE and one
        bulk insert, however many days. ``before_commit`` runs last inside the transaction:
        if it raises, nothing is committed."""
        self.ensure_table(spec)
        table = self.qualified(spec.name)
        within = within or {}
        where = " AND ".join(
            [f"{PARTITION_COLUMN} IN :days", *(f"{checked_identifier(c)} = :w_{c}" for c in within)]
        )
        params: dict[str, object] = {"days": list(days), **{f"w_{c}": v for c, v in within.items()}}
        delete = sa.text(f"DELETE FROM {table} WHERE {where}").bindparams(
            sa.bindparam("days", expanding=True)
        )
        rows = pa.concat_tables(
            [
                data.add_column(0, PARTITION_COLUMN, pa.array([day] * data.num_rows, pa.date32()))
                for day, data in days.items()
            ]
        )
        with self.transaction() as conn:
            # Two runs of the same day serialise here instead of both inserting.
            for day in sorted(days):
                self._lock(conn, f"{table}/{day.isoformat()}")
            conn.execute(delete, params)
            if rows.num_rows:
                self._bulk_insert(conn, table, rows)
            if before_commit is not None:
                before_commit()

    def _bulk_insert(self, conn: Connection, table: str, rows: pa.Table) -> None:
        columns = ", ".join(rows.column_names)
        driver: Any = conn.connection.driver_connection
        if self.dialect == "duckdb":
            view = f"cx_load_{uuid.uuid4().hex}"
            driver.register(view, rows)
            driver.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {view}")
            # (On failure the connection is closed with its registered view.)
            driver.unregister(view)
            return
        options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
        with (
            driver.cursor() as cursor,
            cursor.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT csv)") as copy,
        ):
            for batch in rows.to_batches(max_chunksize=_COPY_BATCH_ROWS):
                sink = pa.BufferOutputStream()
                pacsv.write_csv(pa.Table.from_batches([batch]), sink, options)
                copy.write(sink.getvalue().to_pybytes())

    def read_frame(self, query: str, params: Mapping[str, object] | None = None) -> pd.DataFrame:
        with self.transaction() as conn:
            result = conn.execute(sa.text(query), dict(params or {}))
            return pd.DataFrame(result.fetchall(), columns=list(result.keys()))
