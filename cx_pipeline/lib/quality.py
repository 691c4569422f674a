"""Data-quality measures the asset checks report: pure functions, no Dagster."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cx_pipeline.lib.metrics.sql import numbered, query
from cx_pipeline.lib.store.parquet import partition_path

TRAILING_DAYS = 7
# A day's rows outside [LOW, HIGH] x the trailing mean are worth a look (weekends
# halve volume, so the band is wide); tiny tables are too noisy to judge.
LOW, HIGH, MIN_MEAN = 0.25, 4.0, 10


def partition_rows(root: Path, table: str, day: dt.date) -> int | None:
    """Rows in a day's Parquet file, from its footer (no data read); None if absent."""
    path = partition_path(root, table, day)
    return pq.ParquetFile(path).metadata.num_rows if path.exists() else None


@dataclass(frozen=True)
class VolumeCheck:
    day: dt.date
    rows: int
    trailing_mean: float | None

    @property
    def ok(self) -> bool:
        if self.trailing_mean is None or self.trailing_mean < MIN_MEAN:
            return True
        return LOW * self.trailing_mean <= self.rows <= HIGH * self.trailing_mean

    def describe(self) -> str:
        mean = "n/a" if self.trailing_mean is None else f"{self.trailing_mean:.1f}"
        return f"{self.day}: {self.rows} rows vs trailing {TRAILING_DAYS}-day mean {mean}"


def volume_check(
    root: Path, table: str, day: dt.date, rows: int, counted: Mapping[dt.date, int] | None = None
) -> VolumeCheck:
    """The day's row count against the mean of the days before it that exist: the
    ``counted`` days (computed this run, maybe not written yet), else the files."""
    counted = counted or {}
    earlier = [day - dt.timedelta(days=offset) for offset in range(1, TRAILING_DAYS + 1)]
    before = [counted[d] if d in counted else partition_rows(root, table, d) for d in earlier]
    known = [count for count in before if count is not None]
    return VolumeCheck(day, rows, sum(known) / len(known) if known else None)


def commonest_rule(rejects: pd.DataFrame) -> str:
    counts = Counter(rule for rules in rejects["rules"] for rule in rules.split("; "))
    rule, count = counts.most_common(1)[0]
    return f"{rule} ({count} rows)"


def unknown_references(rows: pd.DataFrame, column: str, known: pd.Series) -> tuple[int, list[str]]:
    """How many non-empty ``column`` values are not in ``known``, and a few of them."""
    values = rows[column].dropna()
    # Arrow's hash-set lookup: pandas' isin on text goes value by value in Python.
    found = pc.is_in(pa.array(values, pa.string()), value_set=pa.array(known, pa.string()))
    unknown = values[~found.to_numpy(zero_copy_only=False)]
    return len(unknown), unknown.drop_duplicates().head(5).tolist()


def events_before_creation(events: pd.DataFrame, tickets: pd.DataFrame) -> pd.DataFrame:
    """Events (with their ticket's created_at) that happen before the ticket was created,
    in the events' order. ``tickets``: one row per ticket. Joined in DuckDB, not by a pandas
    merge on text ids."""
    return query(
        _BEFORE_CREATION, events=numbered(events), tickets=tickets[["ticket_id", "created_at"]]
    )


_BEFORE_CREATION = """
SELECT e.* EXCLUDE (row_order), t.created_at FROM events e JOIN tickets t USING (ticket_id)
WHERE e.event_at < t.created_at ORDER BY e.row_order
"""


def rejects_by_rule(rejects: pd.DataFrame) -> pd.DataFrame:
    """Rejected rows per source and rule (a row breaking two rules counts under each),
    most frequent first: what the stg_rejects asset shows for its days."""
    if rejects.empty:
        return pd.DataFrame({"source": [], "rule": [], "rows": []}).astype({"rows": "int64"})
    rules = rejects.assign(rule=rejects["rules"].str.split("; ")).explode("rule")
    counts = rules.groupby(["source", "rule"]).size().rename("rows").reset_index()
    return counts.sort_values(["rows", "source", "rule"], ascending=[False, True, True],
                              ignore_index=True)  # fmt: skip
