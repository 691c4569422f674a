"""Per-day results of a run that covers many days.

A backfill runs a range of days in one step per asset, and Dagster then records one
materialization per day; without help each would carry the whole range's totals. A
``DayResults`` gathers what each day produced and reports it on that day: its own row
count, headline figures (numbers, so the UI plots them over days) and a Markdown preview
on the day's materialization, and each check's result tied to the day it judged.

Check results go out after the materializations, naming the materialization they judged,
so the UI shows them against that day's data. A per-day check is declared with
``partitions_def=DAILY`` and its asset built with ``can_subset=True`` (Dagster then takes
per-day results in place of one result per check). A day's failed ERROR check fails the
step once every day is reported, so nothing downstream runs on it; the specs themselves
are not ``blocking`` (Dagster gates only on one result per check and would warn).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

# Not exported at the top level: which materialization a check judged.
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData as Judged,
)

from cx_pipeline.defs.partitions import DAILY
from cx_pipeline.lib.headlines import headline_figures, preview
from cx_pipeline.lib.quality import volume_check
from cx_pipeline.lib.store.tables import FCT_TICKETS, STAGED_TABLES

VOLUME_CHECK = "row_count_vs_trailing_mean"
SCHEMA_CHECK = "schema_valid"
# Tables whose day's volume says something: a drop cut short or doubled, a day of tickets
# touched far from the usual. A mart's rows are its breakdown's combinations, whose count
# follows from its inputs; judging it each day would only cost an event per table-day.
VOLUME_CHECKED = frozenset({*(spec.name for spec in STAGED_TABLES.values()), FCT_TICKETS.name})


def table_check_specs(asset: str, model: str) -> list[dg.AssetCheckSpec]:
    """The checks a written table gets: its schema once per run (a day that breaks it fails
    the asset, so a per-day pass would say nothing more), and for the VOLUME_CHECKED its
    row count day by day."""
    volume = dg.AssetCheckSpec(
        VOLUME_CHECK,
        asset=asset,
        partitions_def=DAILY,
        description="Warns when a day's rows fall outside 0.25x-4x the mean of the 7 days before.",
    )
    return [
        *([volume] if asset in VOLUME_CHECKED else []),
        # Enforced when each day is written (publish validates first), so a frame that
        # breaks it fails the asset and nothing downstream runs on it.
        dg.AssetCheckSpec(
            SCHEMA_CHECK,
            asset=asset,
            description=f"Every day written validates against pandera model {model} "
            "(types, required values, allowed values and ranges, natural key).",
        ),
    ]


@dataclass(frozen=True)
class _CheckOutcome:
    asset: str
    check: str
    day: dt.date | None  # None: the run's days together
    passed: bool
    metadata: dict[str, Any]
    severity: dg.AssetCheckSeverity
    description: str | None


class DayResults:
    def __init__(self, context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> None:
        self._context = context
        self._checks: list[_CheckOutcome] = []
        # Rows of each day written this run, per asset: the schema check's totals, and what
        # a volume check compares with (the run's days reach their files in batches).
        self._written: dict[str, dict[dt.date, int]] = {}

    def counted(self, asset: str, day: dt.date, rows: int, **extra: Any) -> None:
        """The day's row count (and any figures) on the day's materialization."""
        assert isinstance(self._context, dg.AssetExecutionContext)
        self._context.add_asset_metadata(
            {"dagster/row_count": rows, **extra}, asset_key=asset, partition_key=day.isoformat()
        )

    def table_written(
        self, root: Path, asset: str, day: dt.date, rows: pd.DataFrame, **extra: Any
    ) -> None:
        """A table's day was validated and written: its row count, headline figures and
        preview on the day, and its checks."""
        self.counted(
            asset, day, len(rows), **headline_figures(asset, rows),
            preview=dg.MetadataValue.md(preview(rows)), **extra,
        )  # fmt: skip
        written = self._written.setdefault(asset, {})
        written[day] = len(rows)
        if asset not in VOLUME_CHECKED:
            return
        volume = volume_check(root, asset, day, len(rows), written)
        mean = volume.trailing_mean
        self.checked(
            asset, VOLUME_CHECK, day, volume.ok,
            {"rows": len(rows), **({} if mean is None else {"trailing_mean": round(mean, 1)})},
            dg.AssetCheckSeverity.WARN, None if volume.ok else volume.describe(),
        )  # fmt: skip

    def not_written(self, asset: str, day: dt.date, reason: str) -> None:
        """The day was not computed: its materialization says why (it had no new rows)."""
        assert isinstance(self._context, dg.AssetExecutionContext)
        self._context.add_asset_metadata(
            {"not_computed": reason}, asset_key=asset, partition_key=day.isoformat()
        )

    def checked(
        self,
        asset: str,
        check: str,
        day: dt.date,
        passed: bool,
        metadata: dict[str, Any],
        severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
        description: str | None = None,
    ) -> None:
        """A check's result on one day (reported after the materializations)."""
        self._checks.append(
            _CheckOutcome(asset, check, day, passed, metadata, severity, description)
        )

    def results(
        self, assets: Iterable[str]
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckEvaluation]:
        """A materialization per asset (Dagster records it on each day of the run, with the
        day's own metadata added above), then each check's result on its day."""
        assets = list(assets)
        for asset in assets:
            yield dg.MaterializeResult(
                asset_key=asset,
                metadata={"days_in_run": len(self._context.partition_keys)},
            )
        checks = self._checks + [
            _CheckOutcome(asset, SCHEMA_CHECK, None, True,
                          {"days_validated": len(days), "rows_validated": sum(days.values())},
                          dg.AssetCheckSeverity.ERROR, None)
            for asset, days in self._written.items()
        ]  # fmt: skip
        judged = {
            asset: self._latest_materializations(asset) for asset in {o.asset for o in checks}
        }
        for outcome in checks:
            day = outcome.day.isoformat() if outcome.day else None
            yield dg.AssetCheckEvaluation(
                asset_key=dg.AssetKey(outcome.asset),
                check_name=outcome.check,
                passed=outcome.passed,
                metadata=outcome.metadata,
                severity=outcome.severity,
                description=outcome.description,
                partition=day,
                target_materialization_data=judged[outcome.asset].get(day),
                # A failed ERROR check stops the assets downstream of this run.
                blocking=outcome.severity == dg.AssetCheckSeverity.ERROR,
            )

    def _latest_materializations(self, asset: str) -> dict[str | None, Judged]:
        """The materialization just recorded for each of the run's days (one query); under
        None the newest of them."""
        keys = list(self._context.partition_keys)
        records = self._context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=keys),
            limit=len(keys),
        ).records
        latest: dict[str | None, Judged] = {}
        for record in records:  # newest first
            judged = Judged(
                storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
            )
            latest.setdefault(None, judged)
            latest.setdefault(record.partition_key, judged)
        return latest
