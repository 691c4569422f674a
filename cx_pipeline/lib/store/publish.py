"""Publishing days of a table: validated, to Parquet, then to the warehouse."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cx_pipeline.lib.store.parquet import PART_FILE, replacing_partition
from cx_pipeline.lib.store.tables import TableSpec
from cx_pipeline.lib.store.warehouse import Warehouse

# Rows a PublishBatch holds back before it publishes them: bounds the memory a run's
# held-back days take (a few MiB of a daily metric table's rows).
BATCH_ROWS = 200_000


def publish(
    spec: TableSpec,
    day: dt.date,
    frame: pd.DataFrame,
    output_dir: Path,
    warehouse: Warehouse,
    slice_of: dict[str, str] | None = None,
    validated: bool = False,
) -> Path:
    """Replace ``day``'s rows of ``spec`` (or of one slice of the day) everywhere."""
    return publish_days(spec, {day: frame}, output_dir, warehouse, slice_of, validated)[day]


def publish_days(
    spec: TableSpec,
    frames: dict[dt.date, pd.DataFrame],
    output_dir: Path,
    warehouse: Warehouse,
    slice_of: dict[str, str] | None = None,
    validated: bool = False,
) -> dict[dt.date, Path]:
    """Replace the rows of ``spec`` on each day of ``frames`` (or of one slice of each day)
    everywhere, all days or none.

    The frames are validated against the table's pandera model first (unless the caller
    has just ``validated`` them), so nothing that breaks the schema is written anywhere.
    The new Parquet files replace the old ones only once the warehouse has committed the
    days, and the warehouse commits only once the new files are written, so a failure on
    either side (a full disk, a lost connection) leaves both with the previous rows; the
    error says so. The files are written in a second thread while the warehouse loads the
    same rows: both run outside the GIL (Arrow's writer, the database), so on two cores
    the slower of the two is what a publish costs, not their sum.
    """
    data = spec.days_to_arrow(frames, validated)
    part = f"{'-'.join(slice_of.values())}.parquet" if slice_of else PART_FILE
    first, last = min(frames), max(frames)
    where = f"{spec.name} {first}" + (f"..{last}" if last > first else "")
    step = "warehouse load"

    def files_written() -> None:  # the warehouse's last step before it commits
        nonlocal step
        step = "Parquet write"
        files_future.result()
        step = "warehouse load"

    try:
        # Leaving the block joins the writer first, then removes any file not put in place.
        with ExitStack() as files, ThreadPoolExecutor(max_workers=1) as writer:
            files_future = writer.submit(
                lambda: {
                    day: files.enter_context(
                        replacing_partition(output_dir, spec.name, day, rows, part=part)
                    )
                    for day, rows in data.items()
                }
            )
            warehouse.replace_days(spec, data, within=slice_of, before_commit=files_written)
            step = "Parquet replace"
            paths = files_future.result()
    except Exception as error:
        if step == "Parquet replace":  # the warehouse committed; the files could not follow
            raise PublishError(
                f"{where}: the warehouse holds the new rows but the Parquet files the previous "
                f"ones ({error}); rerun the days to bring both up to date"
            ) from error
        raise PublishError(
            f"{where}: {step} failed ({error}); nothing changed: Parquet and the warehouse "
            "both still hold the previous rows. Rerun once the cause is fixed"
        ) from error
    return paths


@dataclass
class _Held:
    spec: TableSpec
    slice_of: dict[str, str] | None
    validated: bool
    frames: dict[dt.date, pd.DataFrame] = field(default_factory=dict)


class PublishBatch:
    """Days of a step's tables held back and published together, table by table in the
    order they were first added (one pandera pass and one warehouse transaction per table),
    once they reach ``max_rows`` rows in all or at ``flush``: a small day's fixed cost per
    table is then paid once per batch. A crash before the flush leaves those days' previous
    rows everywhere, as a crash before their publish always did."""

    def __init__(self, output_dir: Path, warehouse: Warehouse, max_rows: int = BATCH_ROWS):
        self._output, self._warehouse, self._max_rows = output_dir, warehouse, max_rows
        self._held: dict[tuple[str, str], _Held] = {}
        self._rows = 0

    def add(
        self,
        spec: TableSpec,
        day: dt.date,
        frame: pd.DataFrame,
        slice_of: dict[str, str] | None = None,
        validated: bool = False,
    ) -> None:
        key = (spec.name, repr(slice_of))
        held = self._held.setdefault(key, _Held(spec, slice_of, validated))
        held.frames[day] = frame
        self._rows += len(frame)
        if self._rows >= self._max_rows:
            self.flush()

    def flush(self) -> None:
        for held in self._held.values():
            publish_days(
                held.spec, held.frames, self._output, self._warehouse, held.slice_of,
                held.validated,
            )  # fmt: skip
        self._held, self._rows = {}, 0


class PublishError(RuntimeError):
    """Days of a table could not be published; the message says what each side holds."""
