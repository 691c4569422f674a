"""Where each day stands, from the folders alone: drops missing, outputs not computed,
drops changed after their day ran. Pure file-system reads (names and times), no Dagster."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from cx_pipeline.lib.ingest.drops import find_drop
from cx_pipeline.lib.store.parquet import partition_path


@dataclass(frozen=True)
class DayStatus:
    day: dt.date
    missing_drops: list[str] = field(default_factory=list)  # sources without a drop
    not_computed: list[str] = field(default_factory=list)  # tables without the day
    stale: list[str] = field(default_factory=list)  # sources whose drop changed since

    @property
    def ok(self) -> bool:
        return not (self.missing_drops or self.not_computed or self.stale)


def day_status(
    landing: Path, output: Path, sources: list[str], tables: list[str], day: dt.date
) -> DayStatus:
    """One day: each source's drop (``landing/<source>/<day>.*``) against its staged
    partition (``stg_<source>``), and every output table's partition."""
    status = DayStatus(day)
    for source in sources:
        drop = find_drop(landing, source, day)
        staged = partition_path(output, f"stg_{source}", day)
        if drop is None:
            status.missing_drops.append(source)
        elif staged.exists() and drop.stat().st_mtime > staged.stat().st_mtime:
            status.stale.append(source)
    status.not_computed.extend(t for t in tables if not partition_path(output, t, day).exists())
    return status


def days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
