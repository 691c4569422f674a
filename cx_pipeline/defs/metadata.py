"""Dagster metadata built from the table registry (column schemas, run summaries)."""

from __future__ import annotations

import os
from typing import Any

import dagster as dg
import sqlalchemy as sa

from cx_pipeline.lib.store.tables import TableSpec

WAREHOUSE_URL_ENV = "CX_WAREHOUSE_URL"


def table_definition_metadata(spec: TableSpec) -> dict[str, Any]:
    """Column names, types and meanings shown on the asset's page in the UI."""
    columns = [
        dg.TableColumn(
            name=column.name,
            type=column.dtype,
            description=column.description,
            constraints=dg.TableColumnConstraints(nullable=column.nullable),
        )
        for column in spec.all_columns
    ]
    return {
        "dagster/column_schema": dg.TableSchema(columns=columns),
        "dagster/table_name": spec.name,
        "grain": ", ".join(["date", *spec.grain]) or "date",
        # Where a BI tool finds it: the engine and table, never the URL (a secret).
        "warehouse": f"{warehouse_engine()}: {spec.name}",
        "parquet": f"<output>/{spec.name}/date=YYYY-MM-DD/",
    }


def warehouse_engine() -> str:
    """The warehouse's engine name only (the URL carries a password)."""
    url = os.environ.get(WAREHOUSE_URL_ENV)
    return sa.make_url(url).get_backend_name() if url else "duckdb"
