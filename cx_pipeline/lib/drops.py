"""Finding and reading a day's drop: ``<landing>/<source>/<YYYY-MM-DD>.<csv|jsonl|parquet>``.

A drop is read losslessly as text (every column a string, plus the 1-based
``_row_number``): typing happens in staging, row by row, so one bad value
rejects one row instead of failing the whole file.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

ROW_NUMBER = "_row_number"
DROP_SUFFIXES = (".csv", ".jsonl", ".parquet")


class DropError(ValueError):
    """A drop that cannot be read at all; the message names the file."""


def find_drop(landing_dir: Path, source: str, day: dt.date) -> Path | None:
    """The day's drop file for a source, or None if nothing landed."""
    found = [
        landing_dir / source / f"{day.isoformat()}{suffix}"
        for suffix in DROP_SUFFIXES
        if (landing_dir / source / f"{day.isoformat()}{suffix}").is_file()
    ]
    if len(found) > 1:
        names = ", ".join(str(p) for p in found)
        raise DropError(f"more than one drop for {source} on {day}: {names}; keep one")
    return found[0] if found else None


def read_drop(path: Path, encoding: str = "utf-8") -> pa.Table:
    """Every column of the drop as text, in file order, with ``_row_number``."""
    readers = {".csv": _read_csv, ".jsonl": _read_jsonl, ".parquet": _read_parquet}
    try:
        table = readers[path.suffix](path, encoding)
    except (pa.ArrowInvalid, ValueError, UnicodeDecodeError) as exc:
        raise DropError(f"cannot read {path}: {exc}") from exc
    row_numbers = pa.array(range(1, table.num_rows + 1), type=pa.int64())
    return table.append_column(ROW_NUMBER, row_numbers)


def _read_csv(path: Path, encoding: str) -> pa.Table:
    with path.open(encoding=encoding, newline="") as handle:
        header = next(csv.reader(handle), None)
    if not header:
        raise DropError(f"{path} is empty: a CSV drop needs at least a header row")
    return pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(encoding=encoding),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in header},
            strings_can_be_null=True,
            null_values=[""],
        ),
    )


def _read_jsonl(path: Path, encoding: str) -> pa.Table:
    frame = pd.read_json(path, lines=True, dtype=False, encoding=encoding, precise_float=True)
    columns = {
        name: pa.array(frame[name].where(frame[name].notna(), None).map(_text, na_action="ignore"))
        for name in frame.columns
    }
    return pa.table({name: col.cast(pa.string()) for name, col in columns.items()})


def _text(value: object) -> str:
    # JSON numbers read as floats: 3.0 stays "3" so ids and scores round-trip.
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _read_parquet(path: Path, encoding: str) -> pa.Table:
    table = pq.read_table(path)
    return pa.table({name: _as_text(table[name]) for name in table.column_names})


def _as_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_timestamp(column.type) and column.type.tz is not None:
        # ISO 8601 with an explicit UTC offset, so staging reads the instant exactly.
        utc = column.cast(pa.timestamp("us", tz="UTC"))
        return pc.strftime(utc, format="%Y-%m-%dT%H:%M:%S+00:00")
    return column.cast(pa.string())
