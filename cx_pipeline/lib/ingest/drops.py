"""Finding and reading a day's drop: ``<landing>/<source>/<YYYY-MM-DD>.<csv|jsonl|parquet>``.

A drop is read losslessly as text (every column a string, plus the 1-based
``_row_number``): typing happens in staging, row by row, so one bad value
rejects one row instead of failing the whole file. A CSV row that cannot be
split into the header's fields (too few or too many, a stray quote) is kept
too, as its raw text with the reason in ``_malformed``, so staging can
quarantine it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

ROW_NUMBER = "_row_number"
MALFORMED = "_malformed"
RAW_TEXT = "_raw_text"
BOOKKEEPING = (ROW_NUMBER, MALFORMED, RAW_TEXT)
DROP_SUFFIXES = (".csv", ".jsonl", ".parquet")
DROP_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})\.(csv|jsonl|parquet)$")


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


def drop_day(path: Path) -> dt.date | None:
    """The arrival day a file's name gives, or None if the name is not a drop's."""
    match = DROP_NAME.match(path.name)
    if not match:
        return None
    try:
        return dt.date.fromisoformat(match.group(1))
    except ValueError:
        return None


def read_drop(path: Path, encoding: str = "utf-8") -> pa.Table:
    """Every column of the drop as text, in file order, with the bookkeeping columns."""
    readers = {".csv": _read_csv, ".jsonl": _read_jsonl, ".parquet": _read_parquet}
    try:
        return readers[path.suffix](path, encoding)
    except DropError:
        raise
    except UnicodeDecodeError as exc:
        raise DropError(_encoding_message(path, encoding, exc)) from exc
    except (pa.ArrowInvalid, ValueError) as exc:
        if "UTF8" in str(exc) or "UTF-8" in str(exc):
            raise DropError(_encoding_message(path, encoding, exc)) from exc
        raise DropError(f"cannot read {path}: {exc}") from exc


def _encoding_message(path: Path, encoding: str, exc: Exception) -> str:
    return (
        f"cannot read {path} as {encoding}: {exc}. If the export uses another encoding, "
        "set CX_DROP_ENCODING (for example latin-1 or cp1252)."
    )


def _with_bookkeeping(
    table: pa.Table, malformed: list[tuple[int | None, str, str]] | None = None
) -> pa.Table:
    """Append malformed rows (line, text, reason) and number every row as in the file."""
    malformed = malformed or []
    good, bad = table.num_rows, len(malformed)
    total = good + bad
    lines = np.array([line - 1 if line else 0 for line, _, _ in malformed], dtype=np.int64)
    positions = np.unique(np.clip(lines, 1, max(total, 1)))
    if len(positions) != bad or (bad and lines.min() < 1):
        # Line numbers unknown or ambiguous (fields spanning lines): number them last.
        positions = np.arange(good + 1, total + 1)
    is_good = np.ones(total + 1, dtype=bool)
    is_good[0] = False
    is_good[positions] = False
    good_numbers = np.nonzero(is_good)[0]
    data = table.append_column(ROW_NUMBER, pa.array(good_numbers, pa.int64()))
    data = data.append_column(MALFORMED, pa.nulls(good, pa.string()))
    data = data.append_column(RAW_TEXT, pa.nulls(good, pa.string()))
    if not bad:
        return data
    extra = {name: pa.nulls(bad, pa.string()) for name in table.column_names}
    extra[ROW_NUMBER] = pa.array(positions, pa.int64())
    extra[MALFORMED] = pa.array([reason for _, _, reason in malformed], pa.string())
    extra[RAW_TEXT] = pa.array([text for _, text, _ in malformed], pa.string())
    rows = pa.concat_tables([data, pa.table(extra, schema=data.schema)])
    return rows.sort_by(ROW_NUMBER)


def _read_csv(path: Path, encoding: str) -> pa.Table:
    with path.open(encoding=encoding, newline="") as handle:
        header = next(csv.reader(handle), None)
    if not header:
        raise DropError(f"{path} is empty: a CSV drop needs at least a header row")
    _refuse_duplicate_names(path, header)
    table, malformed = _parse_csv(path, encoding, header, serial=False)
    if malformed:
        # Line numbers of bad rows are only known when parsing serially.
        table, malformed = _parse_csv(path, encoding, header, serial=True)
    return _with_bookkeeping(table, malformed)


def _parse_csv(
    path: Path, encoding: str, header: list[str], serial: bool
) -> tuple[pa.Table, list[tuple[int | None, str, str]]]:
    malformed: list[tuple[int | None, str, str]] = []

    def set_aside(row: pacsv.InvalidRow) -> str:
        reason = (
            f"malformed CSV row: expected {row.expected_columns} fields, "
            f"got {row.actual_columns} (check quotes and delimiters)"
        )
        malformed.append((row.number, row.text, reason))
        return "skip"

    table = pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(encoding=encoding, use_threads=not serial),
        parse_options=pacsv.ParseOptions(invalid_row_handler=set_aside),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in header},
            strings_can_be_null=True,
            null_values=[""],
        ),
    )
    return table, malformed


def _read_jsonl(path: Path, encoding: str) -> pa.Table:
    fast = _arrow_json_lines(path) if _is_utf8(encoding) and path.stat().st_size else None
    if fast is not None:
        return _with_bookkeeping(fast)
    text = path.read_text(encoding=encoding)
    if not text:
        # A JSON-lines file has no header, so nothing tells an interrupted export from a
        # quiet day; a quiet day says so with a line break (what pandas and jq write).
        raise DropError(
            f"{path} is empty (0 bytes): an interrupted export? A day with no rows lands "
            "a file holding one line break"
        )
    if not text.strip():
        return _with_bookkeeping(pa.table({}))
    malformed: list[tuple[int | None, str, str]] = []
    try:
        frame = _json_lines(text)
    except ValueError:
        # Which line is broken is only known line by line (the slow path, on failure only).
        good, malformed = _split_json_lines(text)
        frame = _json_lines("\n".join(good))
    table = pa.table({name: _text_column(frame[name]) for name in frame.columns})
    return _with_bookkeeping(table, malformed)


def _is_utf8(encoding: str) -> bool:
    return encoding.lower().replace("_", "-") in ("utf-8", "utf8")


# Bytes of a drop's first lines read to learn its columns' kinds.
_JSON_SAMPLE_BYTES = 1 << 20


def _arrow_json_lines(path: Path) -> pa.Table | None:
    """The drop read by Arrow's JSON reader (multithreaded C++, some ten times faster than
    pandas' reader), each column as the text the pandas path gives; None where that path
    must read it: a broken line, a column of mixed kinds, a nested value, invalid UTF-8.

    Arrow reads text that looks like an instant as a timestamp, losing how it was
    written: such columns (seen in the first lines, or else in a first full read) are read
    again as text. Columns keep the order they first appear in."""
    with path.open("rb") as handle:
        head = handle.read(_JSON_SAMPLE_BYTES) + handle.readline()  # whole lines
    try:
        sample = pajson.read_json(io.BytesIO(head))
        as_text = {f.name: pa.string() for f in sample.schema if pa.types.is_temporal(f.type)}
        table = _read_json_as(path, as_text)
        dated = {f.name: pa.string() for f in table.schema if pa.types.is_temporal(f.type)}
        if dated:  # an instant-like column first seen past the sample
            table = _read_json_as(path, {**as_text, **dated})
        table.validate(full=True)  # Arrow's reader lets invalid UTF-8 through
    except pa.ArrowException:  # whatever Arrow cannot do, pandas does as before
        return None
    if any(pa.types.is_nested(f.type) or pa.types.is_temporal(f.type) for f in table.schema):
        return None  # records and lists keep their JSON text through json.dumps
    if any(_inexact_whole_numbers(column) for column in table.columns):
        return None  # Arrow reads an integer past int64 as a float: pandas refuses it
    order = list(dict.fromkeys([*sample.column_names, *table.column_names]))
    return pa.table({name: _arrow_text(table[name]) for name in order})


def _inexact_whole_numbers(column: pa.ChunkedArray) -> bool:
    if not pa.types.is_floating(column.type):
        return False
    values = column.to_numpy(zero_copy_only=False)
    return bool(((values % 1 == 0) & (np.abs(values) > _EXACT_FLOAT_INTEGERS)).any())


def _read_json_as(path: Path, text_columns: dict[str, pa.DataType]) -> pa.Table:
    explicit = pa.schema(list(text_columns.items())) if text_columns else None
    return pajson.read_json(path, parse_options=pajson.ParseOptions(explicit_schema=explicit))


def _arrow_text(column: pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """A column Arrow typed, as the text ``_text_column`` gives the same values."""
    if pa.types.is_boolean(column.type):  # Python's spelling, as str(True) gives
        return pc.if_else(column, "True", "False")
    if pa.types.is_floating(column.type):
        return _float_text(column.to_numpy(zero_copy_only=False))
    return column.cast(pa.string())


def _json_lines(text: str) -> pd.DataFrame:
    if not text.strip():
        return pd.DataFrame()
    return pd.read_json(io.StringIO(text), lines=True, dtype=False, precise_float=True)


def _split_json_lines(text: str) -> tuple[list[str], list[tuple[int | None, str, str]]]:
    """(the lines that parse, (line + 1, text, reason) of those that do not); line numbers
    count from 1, shifted by one like a CSV's header line for the bookkeeping."""
    good: list[str] = []
    malformed: list[tuple[int | None, str, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            json.loads(line)
        except json.JSONDecodeError as error:
            malformed.append((number + 1, line, f"malformed JSON line: {error.msg}"))
        else:
            good.append(line)
    return good, malformed


def _text_column(values: pd.Series) -> pa.Array:
    """The column as text, each value as ``_text`` writes it: a column of one kind (text,
    whole numbers, numbers, true/false) is converted as a whole, not a Python call a row."""
    if pd.api.types.is_string_dtype(values) and values.dtype != object:
        return pa.array(values.array, pa.string())
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_integer_dtype(values):
        return pa.array(values.astype("str").array, pa.string())
    if pd.api.types.is_float_dtype(values):
        return _float_text(values.to_numpy(dtype="float64", na_value=np.nan))
    return pa.array(values.where(values.notna(), None).map(_text, na_action="ignore"), pa.string())


def _float_text(numbers: np.ndarray) -> pa.Array:
    """Numbers as ``_text`` writes them: a whole one without its ".0", NaN as empty."""
    known = ~np.isnan(numbers)
    whole = known & (np.mod(numbers, 1) == 0) & (np.abs(numbers) < 2**63)
    text = np.full(len(numbers), None, dtype=object)
    text[whole] = numbers[whole].astype(np.int64).astype(str)
    other = known & ~whole  # fractions and huge numbers: one by one, as _text writes them
    text[other] = [_text(float(number)) for number in numbers[other]]
    return pa.array(text, pa.string())


def _text(value: object) -> str:
    # JSON numbers read as floats: 3.0 stays "3" so ids and scores round-trip.
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):  # kept as the JSON it was, not as Python's repr
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _refuse_duplicate_names(path: Path, names: list[str]) -> None:
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DropError(
            f"{path}: column name(s) {', '.join(repeated)} appear more than once in the header; "
            "each column needs its own name"
        )


def _read_parquet(path: Path, encoding: str) -> pa.Table:
    table = pq.read_table(path)
    _refuse_duplicate_names(path, table.column_names)
    nested = [field.name for field in table.schema if pa.types.is_nested(field.type)]
    if nested:
        raise DropError(
            f"{path}: column(s) {', '.join(nested)} hold lists or records, not single values; "
            "flatten them in a source mapping (docs/sources.md) before landing the drop"
        )
    for name in table.column_names:
        if name.endswith("_id") and pa.types.is_floating(table[name].type):
            _refuse_inexact_ids(path, name, table[name])
    return _with_bookkeeping(pa.table({n: _as_text(table[n]) for n in table.column_names}))


# Every whole number up to 2**53 is exact in a float64; above it, neighbouring ids collapse.
_EXACT_FLOAT_INTEGERS = 2.0**53


def _refuse_inexact_ids(path: Path, name: str, column: pa.ChunkedArray) -> None:
    """An id column written as floats (pandas does so to an integer column with a gap) is
    read as its whole numbers, 90.0 as "90"; an id a float cannot hold exactly fails."""
    values = column.to_numpy(zero_copy_only=False)
    inexact = ~np.isnan(values) & ~_whole_and_exact(values)
    if inexact.any():
        first = int(np.argmax(inexact))
        value = float(values[first])
        raise DropError(
            f"{path} row {first + 1}, column {name}: id {value!r} is a floating-point "
            f"number that is not an exact whole id ({int(inexact.sum())} such row(s)); "
            "export ids as text or integers"
        )


def _whole_and_exact(values: np.ndarray) -> np.ndarray:
    return (values % 1 == 0) & (np.abs(values) <= _EXACT_FLOAT_INTEGERS)


def _exact_integers(column: pa.ChunkedArray) -> bool:
    values = column.to_numpy(zero_copy_only=False)
    return bool(_whole_and_exact(values[~np.isnan(values)]).all())


def _as_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_floating(column.type) and _exact_integers(column):
        column = column.cast(pa.int64())  # 90.0 as "90", and 2**53 not as "9.007e+15"
    if pa.types.is_timestamp(column.type) and column.type.tz is not None:
        # ISO 8601 with an explicit UTC offset, so staging reads the instant exactly.
        utc = column.cast(pa.timestamp("us", tz="UTC"))
        return pc.strftime(utc, format="%Y-%m-%dT%H:%M:%S+00:00")
    return column.cast(pa.string())
