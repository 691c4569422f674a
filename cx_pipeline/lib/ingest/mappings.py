"""Source mappings: turn a helpdesk's, survey tool's or billing system's export into the
canonical drops the pipeline reads (docs/sources.md).

A mapping is a YAML file: where to read (a file pattern or a SQL query), the format,
column renames, value maps, timestamp formats and zones, constant columns, or how
to derive tickets and ticket events from an event log. It is checked completely
before any data is read; an error names the mapping file and the key.
"""

from __future__ import annotations

import datetime as dt
import glob
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import sqlalchemy as sa
import yaml

from cx_pipeline.lib import schemas
from cx_pipeline.lib.ingest.sources import SOURCES_BY_NAME
from cx_pipeline.lib.metrics.tickets import STATUS_EVENTS

FORMATS = ("csv", "jsonl", "json", "parquet")
TOP_KEYS = {"source", "read", "rename", "values", "timestamps", "constants", "event_log",
            "arrival"}  # fmt: skip
READ_KEYS = {"path", "tables", "query", "format", "delimiter", "encoding", "records", "sql"}
SQL_KEYS = {"url_env", "query"}
EVENT_LOG_KEYS = {"case_id", "activity", "timestamp", "actor", "activities", "reopened_by",
                  "ticket_constants", "ticket_columns", "created_at"}  # fmt: skip
# Canonical columns whose values are a fixed list: a value map must land inside it.
ALLOWED_VALUES = {
    "channel": schemas.CHANNELS,
    "priority": schemas.PRIORITIES,
    "event_type": schemas.EVENT_TYPES,
    "survey_type": schemas.SURVEY_TYPES,
}


class MappingError(ValueError):
    """A mapping that cannot work, named by file and key."""


@dataclass(frozen=True)
class SourceMapping:
    path: Path  # the mapping file
    spec: dict[str, Any]
    ask_database: bool = True  # check a SQL source's query against the database on load

    @property
    def targets(self) -> tuple[str, ...]:
        """The canonical sources this mapping writes."""
        return ("tickets", "ticket_events") if "event_log" in self.spec else (self.spec["source"],)

    def error(self, key: str, message: str) -> MappingError:
        return MappingError(f"{self.path}: {key}: {message}")


def load_mapping(path: Path, ask_database: bool = True) -> SourceMapping:
    """Read and check a mapping file; nothing of the data is read except a file's header
    (or, for a SQL source, the query's columns: ``ask_database=False`` leaves that to the
    first pull, so loading never depends on the database being up)."""
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise MappingError(f"{path}: cannot read the mapping: {error}") from None
    mapping = SourceMapping(path, spec if isinstance(spec, dict) else {}, ask_database)
    _check(mapping)
    return mapping


def _check(mapping: SourceMapping) -> None:
    spec = mapping.spec
    _known_keys(mapping, "(top level)", spec, TOP_KEYS)
    read = spec.get("read")
    if not isinstance(read, dict):
        raise mapping.error("read", "required: a file pattern (path, format) or sql")
    _known_keys(mapping, "read", read, READ_KEYS)
    if "sql" in read:
        _known_keys(mapping, "read.sql", read["sql"], SQL_KEYS)
        for key in sorted(SQL_KEYS - set(read["sql"])):
            raise mapping.error(f"read.sql.{key}", "required")
    else:
        if read.get("format") not in FORMATS:
            raise mapping.error("read.format", f"{read.get('format')!r} is not one of {FORMATS}")
        if ("path" in read) == ("tables" in read):
            raise mapping.error("read.path", "give either read.path or read.tables")
        for name, files in input_tables(mapping).items():
            if not files:
                key = "read.path" if "path" in read else f"read.tables.{name}"
                raise mapping.error(key, f"no file matches {_patterns(read)[name]!r}")
        _check_query(mapping)
    if "event_log" in spec:
        _check_event_log(mapping, spec["event_log"])
        return
    if spec.get("source") not in SOURCES_BY_NAME:
        raise mapping.error(
            "source", f"{spec.get('source')!r} is not one of {list(SOURCES_BY_NAME)}"
        )
    canonical = set(SOURCES_BY_NAME[spec["source"]].columns)
    for key in ("rename", "values", "timestamps", "constants"):
        section = spec.get(key) or {}
        names = section.values() if key == "rename" else section.keys()
        for name in names:
            if name not in canonical and not (key == "timestamps" and name == spec.get("arrival")):
                raise mapping.error(
                    f"{key}.{name}", f"not a column of {spec['source']}: {sorted(canonical)}"
                )
    _check_values(mapping, "values", spec.get("values") or {})
    header = source_columns(mapping)
    if header is not None:
        for column in spec.get("rename") or {}:
            if column not in header:
                raise mapping.error(f"rename.{column}", _no_column(column, header))
        if "arrival" in spec and spec["arrival"] not in header:
            raise mapping.error("arrival", _no_column(spec["arrival"], header))


def _check_event_log(mapping: SourceMapping, log: Any) -> None:
    _known_keys(mapping, "event_log", log, EVENT_LOG_KEYS)
    for key in ("case_id", "activity", "timestamp", "activities"):
        if key not in log:
            raise mapping.error(f"event_log.{key}", "required")
    _check_values(mapping, "event_log", {"event_type": log["activities"]})
    header = source_columns(mapping)
    columns = {key: log[key] for key in ("case_id", "activity", "timestamp", "actor", "created_at")
               if key in log}  # fmt: skip
    columns |= {f"ticket_columns.{k}": v for k, v in (log.get("ticket_columns") or {}).items()}
    for key, column in columns.items():
        if header is not None and column not in header:
            raise mapping.error(f"event_log.{key}", _no_column(column, header))
    tickets = set(SOURCES_BY_NAME["tickets"].columns)
    for section in ("ticket_constants", "ticket_columns"):
        for name in log.get(section) or {}:
            if name not in tickets:
                raise mapping.error(f"event_log.{section}.{name}", "not a column of tickets")


def _no_column(name: str, header: list[str]) -> str:
    """Say which column is missing. The header's names are listed only when it splits into
    columns: a file in another format (a mapping pointed at /etc/passwd) has one "column",
    its first line, and the message must not show a file's content."""
    if len(header) < 2:
        return (
            f"no column {name!r}: the file does not split into columns (a file in another "
            "format, or another delimiter: set read.delimiter); its content is not shown"
        )
    return f"no column {name!r} in the source; its columns: {header}"


def _check_values(mapping: SourceMapping, key: str, values: Mapping[str, Any]) -> None:
    for column, value_map in values.items():
        if not isinstance(value_map, dict):
            raise mapping.error(f"{key}.{column}", "must map source values to canonical ones")
        allowed = ALLOWED_VALUES.get(column)
        for source_value, canonical in value_map.items():
            if allowed and not _empty(canonical) and canonical not in allowed:
                raise mapping.error(
                    f"{key}.{column}.{source_value}", f"{canonical!r} is not one of {allowed}"
                )


def _empty(value: Any) -> bool:
    return value is None or value == ""


def _known_keys(mapping: SourceMapping, where: str, section: Any, known: set[str]) -> None:
    if not isinstance(section, dict):
        raise mapping.error(where, "must be a mapping of keys")
    for key in section:
        if key not in known:
            raise mapping.error(f"{where}.{key}" if where != "(top level)" else key,
                                f"unknown key; expected one of {sorted(known)}")  # fmt: skip


def _patterns(read: Mapping[str, Any]) -> dict[str, str]:
    """Table name -> file pattern: ``read.path`` is the one table ``source``."""
    return dict(read["tables"]) if "tables" in read else {"source": read.get("path", "")}


def input_tables(mapping: SourceMapping) -> dict[str, list[Path]]:
    """Table name -> the files matching its pattern (relative to the mapping file)."""
    tables = {}
    for name, pattern in _patterns(mapping.spec["read"]).items():
        full = pattern if os.path.isabs(pattern) else str(mapping.path.parent / pattern)
        tables[name] = [Path(file) for file in sorted(glob.glob(full))]
    return tables


def _header(path: Path, read: Mapping[str, Any]) -> list[str] | None:
    """A file's column names (its header line or Parquet schema only); None for JSON."""
    if read["format"] in ("jsonl", "json"):
        return None
    if read["format"] == "parquet":
        return list(pq.read_schema(path).names)
    # The header line only, named as the full read names them (an empty name: "Unnamed: 0").
    sep, encoding = read.get("delimiter", ","), read.get("encoding", "utf-8")
    return list(pd.read_csv(path, sep=sep, encoding=encoding, nrows=0).columns)


def source_columns(mapping: SourceMapping) -> list[str] | None:
    """The columns the mapping's renames and event log refer to, from headers only: the
    query's result columns, or the one file's header; None for SQL or JSON sources."""
    read = mapping.spec["read"]
    if "sql" in read:
        return _query_columns(mapping, read["sql"]) if mapping.ask_database else None
    headers = {name: _header(files[0], read) for name, files in input_tables(mapping).items()}
    if any(header is None for header in headers.values()):
        return None
    if "query" not in read:
        return headers["source"]
    empty = {name: pd.DataFrame(columns=header) for name, header in headers.items()}
    return list(_run_query(read["query"], empty).columns)


def _check_query(mapping: SourceMapping) -> None:
    """Bind the query against empty tables with the files' headers: an unknown column or a
    syntax error is reported before any data is read."""
    if "query" not in mapping.spec["read"]:
        return
    try:
        source_columns(mapping)
    except duckdb.Error as error:
        raise mapping.error("read.query", str(error).splitlines()[0]) from None


# --- reading and converting -------------------------------------------------------


def read_source(
    mapping: SourceMapping, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> pd.DataFrame:
    """Every input row, as text. A SQL source gets ``start`` and ``end`` as the bound
    parameters :start and :end (the partition's bounds)."""
    read = mapping.spec["read"]
    if "sql" in read:
        return _read_sql(mapping, read["sql"], start, end)
    tables = {
        name: pd.concat([_read_file(path, read) for path in files], ignore_index=True)
        for name, files in input_tables(mapping).items()
    }
    if "query" not in read:
        return tables["source"]
    return _as_text(_run_query(read["query"], tables))


def _run_query(query: str, tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """A DuckDB SQL query over the tables (text columns), in a private in-memory database
    that can see only them: no file, no network, no COPY out, no change of that setting."""
    with duckdb.connect() as connection:
        for name, frame in tables.items():
            connection.register(name, frame.astype("object") if frame.empty else frame)
        connection.execute("SET enable_external_access = false")
        connection.execute("SET lock_configuration = true")
        return connection.sql(query).df()


def _read_file(path: Path, read: Mapping[str, Any]) -> pd.DataFrame:
    fmt, encoding = read["format"], read.get("encoding", "utf-8")
    if fmt == "csv":
        frame = pd.read_csv(
            path, sep=read.get("delimiter", ","), encoding=encoding, dtype="str",
            keep_default_na=False, na_values=[""],
        )  # fmt: skip
    elif fmt == "parquet":
        frame = pd.read_parquet(path)
    else:
        frame = _read_json(path, fmt == "jsonl", read.get("records"), encoding)
    return _as_text(frame)


def _read_json(path: Path, lines: bool, records: str | None, encoding: str) -> pd.DataFrame:
    """JSON lines, an array, or (``records``) the array under that key of each object, as
    an API export pages it (Zendesk: ``tickets``); nested objects become dotted columns
    (``via.channel``)."""
    with path.open(encoding=encoding) as handle:
        data = [json.loads(row) for row in handle if row.strip()] if lines else [json.load(handle)]
    if records:
        rows = [row for page in data for row in page.get(records, [])]
    else:
        rows = [row for item in data for row in (item if isinstance(item, list) else [item])]
    frame = pd.json_normalize(rows)
    # JSON integers with a null among them arrive as floats: keep 360001, not 360001.0.
    for column in frame.select_dtypes("float").columns:
        values = frame[column].dropna()
        if (values == values.round()).all():
            frame[column] = frame[column].astype("Int64")
    return frame


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Every value as text, empty stays empty: staging parses and checks the types."""
    return frame.astype("str").where(frame.notna())


def _query_columns(mapping: SourceMapping, sql: Mapping[str, str]) -> list[str]:
    """The SQL query's result columns, asked of the database with no rows (LIMIT 0)."""
    wrapped = dict(sql, query=f"SELECT * FROM ({sql['query']}) AS source_query LIMIT 0")
    now = dt.datetime.now(dt.UTC)
    try:
        return list(_read_sql(mapping, wrapped, now, now).columns)
    except (sa.exc.SQLAlchemyError, pd.errors.DatabaseError) as error:
        cause = error.__cause__ or error  # pandas wraps SQLAlchemy's, which wraps the driver's
        message = str(getattr(cause, "orig", None) or cause).splitlines()[0]
        raise mapping.error("read.sql.query", message) from None


def _read_sql(
    mapping: SourceMapping,
    sql: Mapping[str, str],
    start: dt.datetime | None,
    end: dt.datetime | None,
) -> pd.DataFrame:
    url = os.environ.get(sql["url_env"])
    if not url:
        raise mapping.error("read.sql.url_env", f"environment variable {sql['url_env']} is not set")
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            frame = pd.read_sql(
                sa.text(sql["query"]), connection, params={"start": start, "end": end}
            )
    finally:
        engine.dispose()
    return _as_text(frame)


def to_canonical(mapping: SourceMapping, raw: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Canonical rows per target source (text, timestamps as ISO 8601 UTC)."""
    spec = mapping.spec
    if "event_log" in spec:
        log = spec["event_log"]
        for key in ("timestamp", "created_at"):
            if key in log:
                raw = _timestamps(raw, spec, log[key])
        return _from_event_log(log, raw)
    frame = raw.rename(columns=spec.get("rename") or {})
    for column, value_map in (spec.get("values") or {}).items():
        # A value mapped to null or "" becomes empty (e.g. "N/A" -> no agent group).
        canonical = {str(k): None if _empty(v) else str(v) for k, v in value_map.items()}
        frame[column] = frame[column].replace(canonical)
    for column, value in (spec.get("constants") or {}).items():
        frame[column] = str(value)
    # Every timestamp is written as ISO 8601 UTC, whether or not the mapping sets it.
    declared = SOURCES_BY_NAME[spec["source"]].timestamps
    for column in {*(spec.get("timestamps") or {}), *(c for c in declared if c in frame)}:
        frame = _timestamps(frame, spec, column)
    columns = [c for c in SOURCES_BY_NAME[spec["source"]].columns if c in frame.columns]
    if "arrival" in spec:  # kept for daily_drops, which drops it
        if spec["arrival"] not in (spec.get("timestamps") or {}):
            frame = _timestamps(frame, spec, spec["arrival"])
        frame = frame.rename(columns={spec["arrival"]: ARRIVAL})
        columns.append(ARRIVAL)
    return {spec["source"]: frame[columns]}


def _timestamps(frame: pd.DataFrame, spec: Mapping[str, Any], column: str) -> pd.DataFrame:
    """Parse a timestamp column by its format and zone (settings under timestamps.<column>)
    and write it back as ISO 8601 UTC text; unparseable values stay as they were, so
    staging rejects them with the row and field."""
    setting = (spec.get("timestamps") or {}).get(column, {})
    text = frame[column]
    parsed = pd.to_datetime(text, format=setting.get("format", "ISO8601"), errors="coerce")
    if parsed.dt.tz is None:
        # A local time skipped when clocks go forward moves forward by the gap (the clock
        # that wrote it was not yet changed); one that occurs twice is read as the later.
        parsed = parsed.dt.tz_localize(setting.get("timezone", "UTC"), ambiguous=False,
                                       nonexistent="shift_forward")  # fmt: skip
    iso = parsed.dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    return frame.assign(**{column: iso.where(parsed.notna(), text)})


def _from_event_log(log: Mapping[str, Any], raw: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Tickets (a case; created at its ``created_at`` column or its first event; fields
    from ``ticket_columns`` or ``ticket_constants``) and events (mapped activities; an
    activity in ``reopened_by`` after a solve also reopens the ticket; a status event that
    does not change the status is left out)."""
    events = pd.DataFrame(
        {
            "ticket_id": raw[log["case_id"]],
            "event_at": raw[log["timestamp"]],
            "activity": raw[log["activity"]],
            "actor": raw[log["actor"]] if "actor" in log else None,
        }
    ).sort_values(["ticket_id", "event_at"], kind="stable", ignore_index=True)
    tickets = _tickets_of_cases(log, raw, events)
    events["event_type"] = events["activity"].map({str(k): v for k, v in log["activities"].items()})
    # The first reopening activity after each solve reopens the ticket; later ones until
    # the next solve find it open already.
    solves_so_far = (events["event_type"] == "solved").groupby(events["ticket_id"]).cumsum()
    candidate = events["activity"].isin(log.get("reopened_by") or []) & (solves_so_far > 0)
    nth = candidate.astype("int64").groupby([events["ticket_id"], solves_so_far]).cumsum()
    reopening = candidate & (nth == 1)
    reopens = events[reopening].assign(event_type="reopened")
    mapped = pd.concat([events[events["event_type"].notna()], reopens], ignore_index=True)
    mapped = mapped.drop_duplicates(["ticket_id", "event_at", "event_type", "actor"])
    columns = ["ticket_id", "event_at", "event_type", "actor"]
    mapped = mapped[columns].sort_values(columns[:2], kind="stable", ignore_index=True)
    return {"tickets": tickets, "ticket_events": _status_changes_only(mapped)}


def _tickets_of_cases(
    log: Mapping[str, Any], raw: pd.DataFrame, events: pd.DataFrame
) -> pd.DataFrame:
    """One ticket per case: ticket fields from the log's columns (the case's first
    non-empty value) or constants; created at the creation column's time, else at the
    case's first event."""
    cases = raw[log["case_id"]]
    created = events.groupby("ticket_id", sort=True)["event_at"].min()
    tickets = pd.DataFrame({"ticket_id": created.index, "created_at": created.to_numpy()})
    fields = {**(log.get("ticket_columns") or {})}
    if "created_at" in log:
        fields["created_at"] = log["created_at"]
    for canonical, column in fields.items():
        values = tickets["ticket_id"].map(raw[column].groupby(cases).first())  # first non-empty
        tickets[canonical] = values.fillna(tickets[canonical]) if canonical in tickets else values
    for column, value in (log.get("ticket_constants") or {}).items():
        tickets[column] = str(value)
    return tickets


def _status_changes_only(events: pd.DataFrame) -> pd.DataFrame:
    """Leave out a status event that repeats the ticket's status (a log that records
    "Waiting" on every touch, a second "Resolve"): a ticket solved twice without a reopen
    between was solved once."""
    status = events["event_type"].map(STATUS_EVENTS)
    changes = events[status.notna()]
    before = status[status.notna()].groupby(changes["ticket_id"]).shift()
    repeated = before.index[before.to_numpy() == status[status.notna()].to_numpy()]
    return events.drop(index=repeated).reset_index(drop=True)


# A mapping's `arrival` column: when the row reached the source system, if that is not
# the canonical column below (a customer record written by each order, say).
ARRIVAL = "_arrived_at"
ARRIVAL_COLUMN = {
    "tickets": "created_at",
    "ticket_events": "event_at",
    "survey_responses": "submitted_at",
    "customers": "signed_up_at",
}


def daily_drops(
    frames: Mapping[str, pd.DataFrame], timezone: str, first: dt.date | None = None,
    last: dt.date | None = None,
) -> Iterator[tuple[str, dt.date, pd.DataFrame]]:  # fmt: skip
    """(source, day, rows) for every day from the first to the last row's day (or the given
    range): rows arrive on their own timestamp's day; a day without rows gets an empty
    drop, so it reads as a quiet day, not a missing one. Rows from before the range arrive
    in its first day's drop (the history known when the pipeline starts); rows after it
    have not arrived yet and are left for a later import."""
    days_of = {
        source: pd.to_datetime(
            frame[ARRIVAL if ARRIVAL in frame else ARRIVAL_COLUMN[source]],
            utc=True,
            errors="coerce",
        )  # fmt: skip
        .dt.tz_convert(timezone)
        .dt.date
        for source, frame in frames.items()
    }
    known = [d for days in days_of.values() for d in (days.min(), days.max()) if pd.notna(d)]
    if not known and (first is None or last is None):
        return  # no rows and no range: no days
    first = first or min(known)
    last = last or max(known)
    for source, frame in frames.items():
        # A row whose timestamp does not parse goes to the first day's drop, where staging
        # quarantines it with its row and field: nothing is lost on the way.
        arrival = days_of[source].where(days_of[source].notna(), first)
        arrival = arrival.where(arrival >= first, first)
        by_day = dict(iter(frame.groupby(arrival, sort=True)))
        day = first
        while day <= last:
            yield (
                source,
                day,
                by_day.get(day, frame.iloc[0:0]).drop(columns=ARRIVAL, errors="ignore"),
            )
            day += dt.timedelta(days=1)


@dataclass(frozen=True)
class Written:
    drops: int
    # The days the drops cover (None: nothing written).
    first: dt.date | None = None
    last: dt.date | None = None


def write_drops(
    mappings: Sequence[SourceMapping], landing: Path, timezone: str,
    first: dt.date | None = None, last: dt.date | None = None,
) -> Written:  # fmt: skip
    """Convert the mappings' sources into canonical CSV drops under ``landing``, all over
    one range of days: the given one, or the first to the last row's day over all of them,
    so sources that belong together (tickets and their events) land on the same days. A
    SQL source is queried once per day with that day's bounds (it needs the range)."""
    written = Written(0)
    frames: dict[str, list[pd.DataFrame]] = {}
    for mapping in mappings:
        if "sql" in mapping.spec["read"]:
            written = _merge(written, _pull_days(mapping, landing, timezone, first, last))
            continue
        for source, frame in to_canonical(mapping, read_source(mapping)).items():
            frames.setdefault(source, []).append(frame)
    together = {source: pd.concat(parts, ignore_index=True) for source, parts in frames.items()}
    for source, day, rows in daily_drops(together, timezone, first, last):
        _write_csv(rows, landing / source / f"{day.isoformat()}.csv")
        written = _merge(written, Written(1, day, day))
    return written


def _pull_days(
    mapping: SourceMapping, landing: Path, timezone: str, first: dt.date | None,
    last: dt.date | None,
) -> Written:  # fmt: skip
    if first is None or last is None:
        raise mapping.error("read.sql", "a SQL source needs a date range (--start/--end)")
    drops, day = 0, first
    while day <= last:
        start = pd.Timestamp(day).tz_localize(timezone)
        raw = read_source(
            mapping, start.to_pydatetime(), (start + pd.Timedelta(days=1)).to_pydatetime()
        )
        for source, frame in to_canonical(mapping, raw).items():
            rows = frame.drop(columns=ARRIVAL, errors="ignore")
            _write_csv(rows, landing / source / f"{day.isoformat()}.csv")
            drops += 1
        day += dt.timedelta(days=1)
    return Written(drops, first, last)


def _merge(a: Written, b: Written) -> Written:
    firsts = [d for d in (a.first, b.first) if d is not None]
    lasts = [d for d in (a.last, b.last) if d is not None]
    return Written(
        a.drops + b.drops, min(firsts) if firsts else None, max(lasts) if lasts else None
    )


def _write_csv(rows: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    rows.to_csv(partial, index=False)
    partial.replace(path)
