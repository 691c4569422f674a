"""DuckDB over pandas frames: the marts' heavy group-bys and joins, in SQL.

Frames go in as Arrow tables (zero copy for Arrow-backed columns) and results come back
as pandas frames (DATE columns Arrow-backed: lib/frames.py), so pandas and pandera stay
the interface between assets while the grouping and joining runs in DuckDB's vectorised
engine. Instants are UTC throughout.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from cx_pipeline.lib.frames import to_frame


def query(
    sql: str, params: Mapping[str, object] | None = None, **frames: pd.DataFrame
) -> pd.DataFrame:
    """Run ``sql`` over the named ``frames`` (each a table of that name); ``$name``
    placeholders take ``params``."""
    return queries([sql], params, **frames)[0]


def queries(
    sqls: list[str], params: Mapping[str, object] | None = None, **frames: pd.DataFrame
) -> list[pd.DataFrame]:
    """Several queries over the same frames, each converted to Arrow once."""
    database, threads = _database()
    with database.cursor() as con:
        con.execute("SET TimeZone = 'UTC'")
        # Text comes back as large_string, what pandas' str dtype holds: no cast per column.
        con.execute("SET arrow_large_buffer_size = true")
        # A small day's query runs faster on one thread: starting and joining threads costs
        # more than they save on a few thousand rows.
        small = sum(len(frame) for frame in frames.values()) < ONE_THREAD_ROWS
        con.execute(f"SET threads = {1 if small else threads}")
        for name, frame in frames.items():
            con.register(name, pa.Table.from_pandas(frame, preserve_index=False))
        return [
            to_frame(con.sql(sql, params=_used(sql, params or {})).to_arrow_table()) for sql in sqls
        ]


def _used(sql: str, params: Mapping[str, object]) -> dict[str, object]:
    """The parameters a query names (DuckDB refuses ones it does not use)."""
    return {name: value for name, value in params.items() if re.search(rf"\${name}\b", sql)}


# Per process: one in-memory DuckDB and its own number of threads (one per core).
_DATABASES: dict[int, tuple[duckdb.DuckDBPyConnection, int]] = {}
ONE_THREAD_ROWS = 100_000


def _database() -> tuple[duckdb.DuckDBPyConnection, int]:
    """One in-memory DuckDB per process (opening one costs some 25 ms, more than a small
    day's query); each query runs on its own cursor, which has its own registered frames."""
    pid = os.getpid()  # a forked worker opens its own
    if pid not in _DATABASES:
        _DATABASES.clear()
        database = duckdb.connect()
        (threads,) = database.execute("SELECT current_setting('threads')").fetchall()[0]
        _DATABASES[pid] = (database, threads)
    return _DATABASES[pid]


def sql_list(values: tuple[str, ...] | list[str]) -> str:
    """A SQL list of text constants (names from the code, never user input): ('a', 'b')."""
    return "(" + ", ".join("'" + value.replace("'", "''") + "'" for value in values) + ")"


def numbered(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with ``row_order`` 0, 1, ...: SQL has no row order of its own, so a query
    that must keep the order rows came in (same-instant events) sorts by it."""
    return frame.assign(row_order=np.arange(len(frame)))


def last_of_each(
    frame: pd.DataFrame,
    key: list[str],
    in_duckdb_from: int = ONE_THREAD_ROWS,
    order_by: str | None = None,
) -> pd.DataFrame:
    """The last row of each ``key`` (empty values alike): pandas'
    ``drop_duplicates(keep="last")`` over the frame in its order or, with ``order_by``,
    stably sorted by that column first; the rows kept come in that order. Picked in DuckDB
    for a large frame, then taken in pandas (every column keeps its dtype): pandas
    factorizes each text column of the key (1.2-1.8 s for a drop of 3.9 million events)
    and sorts date objects one by one."""
    if len(frame) < in_duckdb_from:  # a DuckDB round trip costs more than pandas here
        ordered = frame if order_by is None else frame.sort_values(order_by, kind="stable")
        return ordered.drop_duplicates(subset=key, keep="last")
    keys = ", ".join(key)
    if order_by is None:
        last = query(_LAST_ROWS.format(key=keys), keyed=numbered(frame[key]))["last"]
        if len(last) == len(frame):  # no repeated key: nothing to take
            return frame
        return frame.iloc[np.sort(last.to_numpy())]
    keyed = numbered(frame[[*key, order_by]])
    picked = query(_LAST_ROWS_BY.format(key=keys, order=order_by), keyed=keyed)["row_order"]
    return frame.iloc[picked.to_numpy()]


_LAST_ROWS = "SELECT max(row_order) AS last FROM keyed GROUP BY {key}"
_LAST_ROWS_BY = """
SELECT row_order FROM keyed
QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {order} DESC, row_order DESC) = 1
ORDER BY {order}, row_order
"""
