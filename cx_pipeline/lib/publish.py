"""Publishing one day of a table: validated, to Parquet, then to the warehouse."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from cx_pipeline.lib.storage import PART_FILE, write_partition
from cx_pipeline.lib.tables import TableSpec
from cx_pipeline.lib.warehouse import Warehouse


def publish(
    spec: TableSpec,
    day: dt.date,
    frame: pd.DataFrame,
    output_dir: Path,
    warehouse: Warehouse,
    slice_of: dict[str, str] | None = None,
) -> Path:
    """Replace ``day``'s rows of ``spec`` (or of one slice of the day) everywhere.

    The frame is validated against the table's pandera model first, so nothing
    that breaks the schema is written anywhere.
    """
    data = spec.to_arrow(frame)
    part = f"{'-'.join(slice_of.values())}.parquet" if slice_of else PART_FILE
    path = write_partition(output_dir, spec.name, day, data, part=part)
    warehouse.replace_partition(spec, day, data, within=slice_of)
    return path
