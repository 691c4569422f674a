"""Publishing one day of a table: validated, to Parquet, then to the warehouse."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from cx_pipeline.lib.store.parquet import PART_FILE, replacing_partition
from cx_pipeline.lib.store.tables import TableSpec
from cx_pipeline.lib.store.warehouse import Warehouse


def publish(
    spec: TableSpec,
    day: dt.date,
    frame: pd.DataFrame,
    output_dir: Path,
    warehouse: Warehouse,
    slice_of: dict[str, str] | None = None,
    validated: bool = False,
) -> Path:
    """Replace ``day``'s rows of ``spec`` (or of one slice of the day) everywhere.

    The frame is validated against the table's pandera model first (unless the caller
    has just ``validated`` it), so nothing that breaks the schema is written anywhere.
    The new Parquet file replaces the old one only once the warehouse has committed the
    day, so a failure on either side (a full disk, a lost connection) leaves both with the
    previous rows; the error says so.
    """
    data = spec.to_arrow(frame, validated)
    part = f"{'-'.join(slice_of.values())}.parquet" if slice_of else PART_FILE
    where = f"{spec.name} {day}"
    step = "Parquet write"
    try:
        with replacing_partition(output_dir, spec.name, day, data, part=part) as path:
            step = "warehouse load"
            warehouse.replace_partition(spec, day, data, within=slice_of)
            step = "Parquet replace"
    except Exception as error:
        if step == "Parquet replace":  # the warehouse committed; the file could not follow
            raise PublishError(
                f"{where}: the warehouse holds the new rows but the Parquet file the previous "
                f"ones ({error}); rerun the day to bring both up to date"
            ) from error
        raise PublishError(
            f"{where}: {step} failed ({error}); nothing changed: Parquet and the warehouse "
            "both still hold the previous rows. Rerun the day once the cause is fixed"
        ) from error
    return path


class PublishError(RuntimeError):
    """A day of a table could not be published; the message says what each side holds."""
