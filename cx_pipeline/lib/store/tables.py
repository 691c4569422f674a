"""Every output table: its name, pandera model, Arrow schema and SQL DDL.

One registry serves the Parquet writer, the warehouse loader, the DDL files in
sql/ and the column schemas shown in the Dagster UI, so a table's name and
columns are written down once.
"""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow

from cx_pipeline.lib import schemas
from cx_pipeline.lib.ingest.sources import SOURCES
from cx_pipeline.lib.store.parquet import PARTITION_COLUMN

_ARROW_TYPES = {
    "str": pa_arrow.string(),
    "float64": pa_arrow.float64(),
    "int64": pa_arrow.int64(),
    "bool": pa_arrow.bool_(),
    "boolean": pa_arrow.bool_(),
    "date": pa_arrow.date32(),
    "datetime64[us, UTC]": pa_arrow.timestamp("us", tz="UTC"),
}
_SQL_TYPES = {
    "duckdb": {
        "str": "VARCHAR",
        "float64": "DOUBLE",
        "int64": "BIGINT",
        "bool": "BOOLEAN",
        "boolean": "BOOLEAN",
        "date": "DATE",
        "datetime64[us, UTC]": "TIMESTAMPTZ",
    },
    "postgresql": {
        "str": "TEXT",
        "float64": "DOUBLE PRECISION",
        "int64": "BIGINT",
        "bool": "BOOLEAN",
        "boolean": "BOOLEAN",
        "date": "DATE",
        "datetime64[us, UTC]": "TIMESTAMPTZ",
    },
}
DIALECTS = tuple(_SQL_TYPES)
# Numbers the days of a batch validated together (TableSpec.days_to_arrow).
_BATCH_DAY = "_batch_day"


def _kind(dtype: str) -> str:
    """pandera's dtype name, with pandas' several spellings of text folded into "str"."""
    return "str" if dtype.startswith(("str", "string")) else dtype


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str
    nullable: bool
    description: str


@dataclass(frozen=True)
class TableSpec:
    name: str
    model: type[pa.DataFrameModel]
    date_description: str
    # Marts have one row per day and grain, even when the grain is empty (one row a day).
    # The pandera model enforces it before a write; the warehouse tables carry no primary
    # key, since keys made replacing a day 10-35x slower on DuckDB (docs/design.md).
    keyed: bool = False

    @property
    def description(self) -> str:
        return inspect.cleandoc(self.model.__doc__ or self.name)

    @property
    def columns(self) -> list[Column]:
        """The frame's columns (the partition column ``date`` is not among them)."""
        return [
            Column(name, _kind(str(col.dtype)), bool(col.nullable), col.description or "")
            for name, col in self.model.to_schema().columns.items()
        ]

    @property
    def all_columns(self) -> list[Column]:
        """``date`` first, then the frame's columns: the warehouse table's columns."""
        date = Column(PARTITION_COLUMN, "date", False, self.date_description)
        return [date, *self.columns]

    @property
    def grain(self) -> list[str]:
        """Natural key within a day (``Config.unique``); empty when rows are not keyed."""
        unique: Any = getattr(self.model.Config, "unique", None) or []
        return [unique] if isinstance(unique, str) else list(unique)

    @property
    def arrow_schema(self) -> pa_arrow.Schema:
        return pa_arrow.schema(
            [pa_arrow.field(c.name, _ARROW_TYPES[c.dtype], c.nullable) for c in self.columns]
        )

    def to_arrow(self, frame: pd.DataFrame, validated: bool = False) -> pa_arrow.Table:
        """Validate a frame against the model (unless the caller just ``validated`` it) and
        convert it with the table's exact types."""
        checked = frame if validated else self.model.validate(frame)
        if self.keyed and not self.grain and len(checked) > 1:
            raise ValueError(f"{self.name} holds one row a day, got {len(checked)}")
        return self._arrow(checked)

    def _arrow(self, frame: pd.DataFrame) -> pa_arrow.Table:
        ordered = frame[[c.name for c in self.columns]]
        return pa_arrow.Table.from_pandas(ordered, schema=self.arrow_schema, preserve_index=False)

    def days_to_arrow(
        self, frames: Mapping[dt.date, pd.DataFrame], validated: bool = False
    ) -> dict[dt.date, pa_arrow.Table]:
        """``to_arrow`` for several days at once: one pandera pass over the days together
        (its cost is mostly per call, 5-20 ms even on a one-row frame), the natural key
        checked within each day. A day that breaks the model is then found and reported
        by itself, so the error names the day."""
        if len(frames) == 1 or validated:
            return {day: self.to_arrow(frame, validated) for day, frame in frames.items()}
        together = pd.concat(
            [frame.assign(**{_BATCH_DAY: n}) for n, frame in enumerate(frames.values())],
            ignore_index=True,
        )
        try:
            self._days_schema.validate(together)
        except (pa.errors.SchemaError, pa.errors.SchemaErrors):
            for day, frame in frames.items():
                try:
                    self.to_arrow(frame)
                except Exception as error:
                    error.add_note(f"in {self.name}, day {day}")
                    raise
            raise
        data = self._arrow(together)
        offsets = np.cumsum([0, *(len(frame) for frame in frames.values())])
        return {
            day: data.slice(offsets[n], offsets[n + 1] - offsets[n]) for n, day in enumerate(frames)
        }

    @cached_property
    def _days_schema(self) -> pa.DataFrameSchema:
        """The model with a column numbering the days, which the natural key (or, for a
        table of one row a day, the key by itself) includes."""
        schema = self.model.to_schema().add_columns({_BATCH_DAY: pa.Column("int64")})
        if self.grain or self.keyed:
            schema.unique = [_BATCH_DAY, *self.grain]
        return schema

    def create_sql(self, dialect: str, qualified_name: str) -> list[str]:
        """CREATE TABLE and COMMENT statements for one dialect."""
        types = _SQL_TYPES[dialect]
        lines = [
            f"    {c.name} {types[c.dtype]}{'' if c.nullable else ' NOT NULL'}"
            for c in self.all_columns
        ]
        body = ",\n".join(lines)
        statements = [f"CREATE TABLE IF NOT EXISTS {qualified_name} (\n{body}\n)"]
        if dialect == "postgresql":
            # A day is replaced by DELETE ... WHERE date = ..., and BI tools filter on date.
            # (DuckDB's zone maps on the insertion-ordered date serve the same purpose.)
            statements.append(
                f"CREATE INDEX IF NOT EXISTS {self.name}_date_idx ON {qualified_name} (date)"
            )
        statements.append(f"COMMENT ON TABLE {qualified_name} IS {sql_text(self.description)}")
        statements += [
            f"COMMENT ON COLUMN {qualified_name}.{c.name} IS {sql_text(c.description)}"
            for c in self.all_columns
        ]
        return statements

    def sql_type(self, dialect: str, column: Column) -> str:
        return _SQL_TYPES[dialect][column.dtype]


def sql_text(text: str) -> str:
    return "'" + " ".join(text.split()).replace("'", "''") + "'"


ARRIVAL_DAY = "Arrival day: the day of the drop this row came in (reporting time zone)."
EVENT_DAY = "Event day the figures belong to (reporting time zone)."

STAGED_TABLES = {
    source.name: TableSpec(source.staged_table, source.model, ARRIVAL_DAY) for source in SOURCES
}
STG_REJECTS = TableSpec("stg_rejects", schemas.StgRejects, ARRIVAL_DAY)
AGG_DAILY_RESOLUTION_TIME = TableSpec(
    "agg_daily_resolution_time", schemas.AggDailyResolutionTime, EVENT_DAY, keyed=True
)
AGG_DAILY_TICKETS_BY_TOPIC = TableSpec(
    "agg_daily_tickets_by_topic", schemas.AggDailyTicketsByTopic, EVENT_DAY, keyed=True
)
AGG_DAILY_CHURN = TableSpec("agg_daily_churn", schemas.AggDailyChurn, EVENT_DAY, keyed=True)
AGG_DAILY_CHURN_BY_SEGMENT = TableSpec(
    "agg_daily_churn_by_segment", schemas.AggDailyChurnBySegment, EVENT_DAY, keyed=True
)
AGG_RETENTION_COHORTS = TableSpec(
    "agg_retention_cohorts",
    schemas.AggRetentionCohorts,
    "As-of day: the cohort triangle as known at the end of this day.",
    keyed=True,
)
SUBMISSION_DAY = "Submission day of the responses (the last day of the window)."
AGG_DAILY_NPS = TableSpec("agg_daily_nps", schemas.AggDailyNps, SUBMISSION_DAY, keyed=True)
AGG_DAILY_CSAT = TableSpec("agg_daily_csat", schemas.AggDailyCsat, SUBMISSION_DAY, keyed=True)
AGG_DAILY_CES = TableSpec("agg_daily_ces", schemas.AggDailyCes, SUBMISSION_DAY, keyed=True)
FCT_TICKETS = TableSpec(
    "fct_tickets", schemas.FctTickets, "Day the facts are as of (its end).", keyed=True
)
AGG_DAILY_TICKET_ACTIVITY = TableSpec(
    "agg_daily_ticket_activity", schemas.AggDailyTicketActivity, EVENT_DAY, keyed=True
)
FCT_OPEN_TICKETS = TableSpec(
    "fct_open_tickets", schemas.FctOpenTickets, "Day whose end the snapshot is taken at.", True
)
AGG_DAILY_BACKLOG = TableSpec(
    "agg_daily_backlog", schemas.AggDailyBacklog, "Day whose end the backlog is counted at.", True
)
AGG_DAILY_WORKLOAD = TableSpec(
    "agg_daily_workload", schemas.AggDailyWorkload, EVENT_DAY, keyed=True
)
AGG_DAILY_REPEAT_CONTACTS = TableSpec(
    "agg_daily_repeat_contacts", schemas.AggDailyRepeatContacts, "Creation day.", keyed=True
)
AGG_DAILY_CHANNEL_MIX = TableSpec(
    "agg_daily_channel_mix", schemas.AggDailyChannelMix, "Creation day (the window's last).", True
)
DIM_CUSTOMERS = TableSpec(
    "dim_customers", schemas.DimCustomers, "Day whose end the snapshot is taken at.", True
)
AGG_DAILY_CUSTOMER_HEALTH = TableSpec(
    "agg_daily_customer_health", schemas.AggDailyCustomerHealth, "Day scored (as of its end).", True
)
DIM_DATE = TableSpec("dim_date", schemas.DimDate, "The day described.", keyed=True)
MART_TABLES = (
    FCT_TICKETS,
    AGG_DAILY_TICKET_ACTIVITY,
    AGG_DAILY_WORKLOAD,
    FCT_OPEN_TICKETS,
    AGG_DAILY_BACKLOG,
    AGG_DAILY_RESOLUTION_TIME,
    AGG_DAILY_TICKETS_BY_TOPIC,
    AGG_DAILY_REPEAT_CONTACTS,
    AGG_DAILY_CHANNEL_MIX,
    AGG_DAILY_CHURN,
    AGG_DAILY_CHURN_BY_SEGMENT,
    DIM_CUSTOMERS,
    AGG_DAILY_CUSTOMER_HEALTH,
    AGG_RETENTION_COHORTS,
    AGG_DAILY_NPS,
    AGG_DAILY_CSAT,
    AGG_DAILY_CES,
    DIM_DATE,
)
ALL_TABLES: tuple[TableSpec, ...] = (*STAGED_TABLES.values(), STG_REJECTS, *MART_TABLES)
TABLES_BY_NAME = {table.name: table for table in ALL_TABLES}


def ddl_script(dialect: str, schema: str | None = None) -> str:
    """The whole DDL of one dialect, as written to sql/<dialect>/tables.sql."""
    header = (
        f"-- Generated by `cx-pipeline ddl --dialect {dialect}` from cx_pipeline/lib/schemas.py;\n"
        "-- do not edit by hand. The pipeline creates these tables itself on first run.\n"
    )
    blocks = []
    for table in ALL_TABLES:
        name = f"{schema}.{table.name}" if schema else table.name
        blocks.append(";\n".join(table.create_sql(dialect, name)) + ";\n")
    return header + "\n" + "\n".join(blocks)
