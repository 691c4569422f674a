"""Watching the landing folder (which drops are new or changed since the last look) and the
staged drops (which hold late rows of earlier days)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from cx_pipeline.lib.ingest.drops import drop_day
from cx_pipeline.lib.store.parquet import PART_FILE, partition_day, rows_and_minimum


@dataclass(frozen=True)
class LandingScan:
    # "source/file" -> "mtime_ns:size": a changed file gets a new signature. Kept in the
    # sensor's cursor, so its format stays (another one would see every drop as changed).
    signatures: dict[str, str]
    # Files whose name is not a drop's, or whose day is outside [first_day, last_day].
    unrecognised: list[str]


def scan_landing(
    landing: Path, sources: list[str], first_day: dt.date, last_day: dt.date
) -> LandingScan:
    signatures, unrecognised = {}, []
    for source in sources:
        folder = landing / source
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            if entry.name.startswith(".") or not entry.is_file():
                continue
            day = drop_day(entry)
            key = f"{source}/{entry.name}"
            if day is None or not first_day <= day <= last_day:
                unrecognised.append(key)
                continue
            stat = entry.stat()
            signatures[key] = f"{stat.st_mtime_ns}:{stat.st_size}"
    return LandingScan(signatures, sorted(unrecognised))


def changed_days(previous: dict[str, str], current: dict[str, str]) -> list[dt.date]:
    """Days with a drop that is new or changed since ``previous``."""
    days = {
        drop_day(Path(key)) for key, signature in current.items() if previous.get(key) != signature
    }
    return sorted(day for day in days if day is not None)


def complete_through(current: dict[str, str], sources: list[str]) -> dt.date | None:
    """The newest day for which every source has a drop."""
    per_source = [
        {drop_day(Path(key)) for key in current if key.startswith(f"{source}/")}
        for source in sources
    ]
    common = set.intersection(*per_source) if per_source else set()
    common.discard(None)
    return max(common) if common else None  # type: ignore[type-var]


# The instant that gives a staged row its day (an arrival-day partition may hold rows of
# earlier days: late rows).
EVENT_TIME = {
    "stg_tickets": "created_at",
    "stg_ticket_events": "event_at",
    "stg_survey_responses": "submitted_at",
}


def staged_contents(output: Path, timezone: str) -> dict[str, str]:
    """ "table/date=D" -> "rows:earliest day" of every staged partition, from the Parquet
    footers (no data read). By content, not file time, so a rerun that writes the same rows
    again is no change."""
    contents = {}
    for table, column in EVENT_TIME.items():
        folder = output / table
        if not folder.is_dir():
            continue
        for partition in sorted(folder.iterdir()):
            part = partition / PART_FILE
            if part.is_file():
                rows, earliest = rows_and_minimum(part, column)
                day = earliest.astimezone(ZoneInfo(timezone)).date() if earliest else None
                contents[f"{table}/{partition.name}"] = f"{rows}:{day or ''}"
    return contents


def late_row_range(
    previous: dict[str, str], current: dict[str, str], late_row_days: int
) -> tuple[dt.date, dt.date] | None:
    """The days to rerun for staged partitions that are new or changed and hold rows of
    earlier days: from the earliest such day (at most ``late_row_days`` back, as far as a
    day reads later drops) through the newest arrival day; None if there are none."""
    starts, ends = [], []
    for key, content in current.items():
        if previous.get(key) == content:
            continue
        arrival = partition_day(key.rsplit("/", 1)[1])
        earliest = content.split(":", 1)[1]
        if earliest and dt.date.fromisoformat(earliest) < arrival and late_row_days > 0:
            starts.append(
                max(dt.date.fromisoformat(earliest), arrival - dt.timedelta(late_row_days))
            )
            ends.append(arrival)
    return (min(starts), max(ends)) if starts else None
