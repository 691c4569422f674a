"""Running the pipeline in-process and reading its outputs back, for tests."""

from __future__ import annotations

import warnings
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.dataset as ds

from cx_pipeline.cli import QUIET_RUN_CONFIG, RANGE_END_TAG, RANGE_START_TAG
from cx_pipeline.definitions import ASSETS, RUNNABLE
from cx_pipeline.defs.marts import MART_ASSETS
from cx_pipeline.defs.raw import RAW_ASSETS
from cx_pipeline.defs.staging import STAGING_ASSETS
from cx_pipeline.lib.store.tables import MART_TABLES, STAGED_TABLES
from cx_pipeline.lib.store.warehouse import Warehouse

warnings.filterwarnings("ignore", category=dg.BetaWarning)

RAW_AND_STAGING = [*RAW_ASSETS, *STAGING_ASSETS]
MARTS = MART_ASSETS


def run_range(resources: dict[str, object], start: str, end: str, assets=RUNNABLE):
    result = dg.materialize(
        assets,
        resources=resources,
        tags={RANGE_START_TAG: start, RANGE_END_TAG: end},
        run_config=QUIET_RUN_CONFIG,
    )
    assert result.success
    return result


def run_day(resources: dict[str, object], day: str, assets=ASSETS) -> None:
    result = dg.materialize(
        assets, resources=resources, partition_key=day, run_config=QUIET_RUN_CONFIG
    )
    assert result.success


def warehouse_table(resources: dict[str, object], table: str) -> pd.DataFrame:
    warehouse: Warehouse = resources["warehouse"].connect()  # type: ignore[attr-defined]
    return warehouse.read_frame(f"SELECT * FROM {warehouse.qualified(table)}")


def parquet_table(resources: dict[str, object], table: str) -> pd.DataFrame:
    root = Path(resources["paths"].output_dir) / table  # type: ignore[attr-defined]
    return ds.dataset(root, format="parquet", partitioning="hive").to_table().to_pandas()


def sorted_rows(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["date"] = frame["date"].astype("str")
    return frame.sort_values(list(frame.columns), ignore_index=True)


OUTPUT_TABLES = [*(t.name for t in STAGED_TABLES.values()), *(t.name for t in MART_TABLES)]


def parquet_files(output: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(output)): path.read_bytes()
        for path in sorted(output.rglob("*.parquet"))
        if not path.name.startswith(".")
    }
