"""Watching the landing folder: which drops are new or changed since the last look."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cx_pipeline.lib.drops import drop_day


@dataclass(frozen=True)
class LandingScan:
    # "source/file" -> "mtime_ns:size": a changed file gets a new signature.
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
