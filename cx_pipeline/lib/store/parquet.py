"""The Parquet store: one hive-partitioned data set per table.

``<output>/<table>/date=YYYY-MM-DD/part-0.parquet``, readable by
``pyarrow.dataset``, DuckDB (``read_parquet(..., hive_partitioning=true)``) and
Spark. A partition is replaced by writing a hidden temporary file next to the
old one and renaming it over it, so a crash leaves the previous good file.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from cx_pipeline.lib.frames import to_frame

PARTITION_COLUMN = "date"
PART_FILE = "part-0.parquet"
_PARTITIONING = ds.partitioning(pa.schema([(PARTITION_COLUMN, pa.date32())]), flavor="hive")


def partition_path(root: Path, table: str, day: dt.date, part: str = PART_FILE) -> Path:
    return root / table / f"{PARTITION_COLUMN}={day.isoformat()}" / part


def partition_day(folder_name: str) -> dt.date:
    """The day of a partition folder (``date=2026-03-04``)."""
    return dt.date.fromisoformat(folder_name.removeprefix(f"{PARTITION_COLUMN}="))


def file_version(path: Path) -> tuple[int, int, int]:
    """A file's inode, size and modification time: a day rewritten (an atomic rename) is a
    new file, so whatever was derived from the old one is stale."""
    stat = path.stat()
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def write_partition(
    root: Path, table: str, day: dt.date, data: pa.Table, part: str = PART_FILE
) -> Path:
    """Atomically replace one day's file of a table (``part`` names the file when a
    day has several, e.g. one per source)."""
    with replacing_partition(root, table, day, data, part) as target:
        return target


@contextmanager
def replacing_partition(
    root: Path, table: str, day: dt.date, data: pa.Table, part: str = PART_FILE
) -> Iterator[Path]:
    """Write the day's new file beside the old one; it replaces the old one only when the
    with-block succeeds (e.g. the warehouse load), so a failure leaves the previous file."""
    target = partition_path(root, table, day, part)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.parent / f".{part}.{uuid.uuid4().hex}.tmp"
    try:
        pq.write_table(data, temporary, compression="zstd")
        with temporary.open("rb") as handle:
            os.fsync(handle.fileno())
        yield target
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def write_frame(
    root: Path, table: str, day: dt.date, frame: pd.DataFrame, schema: pa.Schema
) -> Path:
    """Atomically replace one day of a table from a frame, with the table's exact types."""
    data = pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
    return write_partition(root, table, day, data)


def read_partition_table(root: Path, table: str, day: dt.date) -> pa.Table | None:
    path = partition_path(root, table, day)
    return pq.read_table(path) if path.exists() else None


def rows_and_minimum(path: Path, column: str) -> tuple[int, Any]:
    """A Parquet file's row count and the smallest value of ``column``, from its footer
    (row-group statistics): nothing of the data is read."""
    metadata = pq.ParquetFile(path).metadata
    index = metadata.schema.names.index(column)
    minima = [
        stats.min
        for group in range(metadata.num_row_groups)
        if (stats := metadata.row_group(group).column(index).statistics) and stats.has_min_max
    ]
    return metadata.num_rows, min(minima) if minima else None


def _has_value_below(path: Path, column: str, bound: Any) -> bool:
    _, smallest = rows_and_minimum(path, column)
    return smallest is not None and smallest < bound


def window_files(folder: Path, start: dt.date, end: dt.date) -> list[str]:
    """The Parquet files of the partitions ``start..end``: one listing of the table's
    folder, partitions picked by name (ISO dates sort as text), hidden files skipped."""
    if not folder.is_dir():
        return []
    low, high = f"{PARTITION_COLUMN}={start.isoformat()}", f"{PARTITION_COLUMN}={end.isoformat()}"
    partitions = sorted(e.path for e in os.scandir(folder) if low <= e.name <= high and e.is_dir())
    return [
        entry.path
        for partition in partitions
        for entry in sorted(os.scandir(partition), key=lambda e: e.name)
        if entry.name.endswith(".parquet") and not entry.name.startswith(".")
    ]


def latest_partition_before(root: Path, table: str, day: dt.date) -> dt.date | None:
    """The newest day before ``day`` that has a partition of ``table`` (a carried state's
    previous day: normally the day before; after skipped days, the last one written)."""
    folder = root / table
    if not folder.is_dir():
        return None
    prefix, before = f"{PARTITION_COLUMN}=", f"{PARTITION_COLUMN}={day.isoformat()}"
    names = [e.name for e in os.scandir(folder) if e.name.startswith(prefix) and e.name < before]
    written = (name for name in sorted(names, reverse=True) if (folder / name / PART_FILE).exists())
    newest = next(written, None)
    return partition_day(newest) if newest else None


def read_window(
    root: Path,
    table: str,
    schema: pa.Schema,
    start: dt.date,
    end: dt.date,
    columns: list[str] | None = None,
    row_filter: ds.Expression | None = None,
    before: tuple[str, Any] | None = None,
) -> pd.DataFrame:
    """Rows of days ``start..end`` (inclusive), with the ``date`` column.

    Only the partitions in the window are opened (the filter on ``date`` prunes
    folders) and only the asked-for columns are read, so memory follows the
    window and the projection, not the length of history. ``before`` (column, bound):
    only rows whose column is below the bound, and only from files whose footer says
    they have some (a day's late rows in later drops: most drops have none).
    """
    wanted = columns or schema.names
    full_schema = schema.append(pa.field(PARTITION_COLUMN, pa.date32()))
    projection = [*wanted, PARTITION_COLUMN] if PARTITION_COLUMN not in wanted else wanted

    def empty() -> pd.DataFrame:  # built only when needed: it costs a conversion a read
        return to_frame(full_schema.empty_table().select(projection))

    files = window_files(root / table, start, end)
    if before is not None:
        column, bound = before
        files = [f for f in files if _has_value_below(Path(f), column, bound)]
        below = ds.field(column) < bound
        row_filter = below if row_filter is None else below & row_filter
    if not files:
        return empty()
    if row_filter is None:
        result = pa.concat_tables(
            [_DAY_FILES.read(Path(f), root / table, full_schema, projection) for f in files]
        )
    else:
        result = _dataset(files, root / table, full_schema).to_table(
            columns=projection, filter=row_filter
        )
    return to_frame(result) if result.num_rows else empty()


def _dataset(files: list[str], folder: Path, schema: pa.Schema) -> ds.Dataset:
    # The schema is the table's: a file written before a column existed reads it as empty.
    return ds.dataset(
        files, schema=schema, format="parquet", partitioning=_PARTITIONING,
        partition_base_dir=str(folder),
    )  # fmt: skip


class _RecentDayFiles:
    """Day files read lately, kept as Arrow tables up to ``max_bytes`` (least recently used
    out first). A window moves a day at a time and several marts read the same days, so
    most reads of a run find their file here instead of opening and decoding it again.
    A file is known by its inode, size and modification time: a rewritten day (an atomic
    rename) is a new file and is read afresh."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._tables: OrderedDict[tuple[Any, ...], pa.Table] = OrderedDict()
        self._bytes = 0

    def read(self, path: Path, folder: Path, schema: pa.Schema, columns: list[str]) -> pa.Table:
        key = (str(path), *file_version(path), tuple(columns))
        table = self._tables.get(key)
        if table is not None:
            self._tables.move_to_end(key)
            return table
        table = _dataset([str(path)], folder, schema).to_table(columns=columns)
        self._tables[key] = table
        self._bytes += table.nbytes
        while self._bytes > self._max_bytes and self._tables:
            self._bytes -= self._tables.popitem(last=False)[1].nbytes
        return table


_DAY_FILES = _RecentDayFiles(max_bytes=256 * 2**20)
