"""Mart assets: the daily metric tables (``agg_daily_<subject>``) a BI tool reads.

Each mart day is computed from the staged history it needs (declared to
Dagster as a window of earlier staging days), so days can run in any order or
alone and give the same rows.
"""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd

from cx_pipeline.defs.metadata import run_summary, table_definition_metadata
from cx_pipeline.defs.partitions import ALL_EARLIER_DAYS, DAILY, ONE_RUN, days_back, partition_days
from cx_pipeline.defs.resources import CxPaths, WarehouseResource
from cx_pipeline.defs.staging import (
    schema_check_result,
    schema_check_spec,
    volume_check_result,
    volume_check_spec,
)
from cx_pipeline.lib import history, metrics, surveys, tables
from cx_pipeline.lib.metrics import Day
from cx_pipeline.lib.publish import publish
from cx_pipeline.lib.quality import partition_rows, volume_check
from cx_pipeline.lib.tables import TableSpec
from cx_pipeline.lib.views import views_of
from cx_pipeline.settings import SETTINGS

# Tickets by topic compares a day with the 7 before it; one more day of
# arrivals covers a ticket created just before midnight that landed next day.
TOPIC_WINDOW_DAYS = 8


@dataclass(frozen=True)
class Mart:
    spec: TableSpec
    # Staged table -> how many days before the mart's day it reads.
    upstream: dict[str, int]
    compute: Callable[[Path, Day], pd.DataFrame]

    def missing_inputs(self, output: Path, day: dt.date) -> list[str]:
        """Staged tables whose own day is missing (a missing drop): the day is not computed,
        so it shows as missing rather than as a day with nothing in it."""
        return [t for t in self.upstream if partition_rows(output, t, day) is None]


def _resolution_time(output: Path, day: Day) -> pd.DataFrame:
    tickets, events = history.milestone_history(output, day, SETTINGS.lookback_days)
    return metrics.resolution_time(tickets, events, day)


def _tickets_by_topic(output: Path, day: Day) -> pd.DataFrame:
    tickets = history.tickets_created_recently(output, day, TOPIC_WINDOW_DAYS)
    return metrics.tickets_by_topic(tickets, day, SETTINGS.start_date)


def _churn(output: Path, day: Day) -> pd.DataFrame:
    return metrics.churn(history.current_customers(output, day, SETTINGS.start_date), day)


def _retention_cohorts(output: Path, day: Day) -> pd.DataFrame:
    customers = history.current_customers(output, day, SETTINGS.start_date)
    return metrics.retention_cohorts(customers, day)


def _survey_mart(kind: str) -> Callable[[Path, Day], pd.DataFrame]:
    def compute(output: Path, day: Day) -> pd.DataFrame:
        responses = history.survey_responses(
            output, day, SETTINGS.start_date, SETTINGS.lookback_days
        )
        kinds = surveys.survey_tables(responses, day, SETTINGS.survey_min_responses)
        return kinds[kind]

    return compute


SURVEY_UPSTREAM = {
    "stg_survey_responses": history.SURVEY_WINDOW_DAYS,
    "stg_customers": ALL_EARLIER_DAYS,
    "stg_tickets": SETTINGS.lookback_days,
}

MARTS = (
    Mart(
        tables.AGG_DAILY_RESOLUTION_TIME,
        {"stg_tickets": SETTINGS.lookback_days, "stg_ticket_events": SETTINGS.lookback_days},
        _resolution_time,
    ),
    Mart(tables.AGG_DAILY_TICKETS_BY_TOPIC, {"stg_tickets": TOPIC_WINDOW_DAYS}, _tickets_by_topic),
    Mart(tables.AGG_DAILY_CHURN, {"stg_customers": ALL_EARLIER_DAYS}, _churn),
    Mart(tables.AGG_RETENTION_COHORTS, {"stg_customers": ALL_EARLIER_DAYS}, _retention_cohorts),
    Mart(tables.AGG_DAILY_NPS, SURVEY_UPSTREAM, _survey_mart("nps")),
    Mart(tables.AGG_DAILY_CSAT, SURVEY_UPSTREAM, _survey_mart("csat")),
    Mart(tables.AGG_DAILY_CES, SURVEY_UPSTREAM, _survey_mart("ces")),
)


def build_mart_asset(mart: Mart) -> dg.AssetsDefinition:
    @dg.asset(
        name=mart.spec.name,
        group_name="marts",
        deps=[
            dg.AssetDep(name, partition_mapping=days_back(days))
            for name, days in mart.upstream.items()
        ],
        partitions_def=DAILY,
        backfill_policy=ONE_RUN,
        kinds={"pandas", "parquet"},
        description=mart.spec.description,
        metadata=table_definition_metadata(mart.spec),
        check_specs=[
            volume_check_spec(mart.spec.name),
            schema_check_spec(mart.spec.name, mart.spec.model.__name__),
        ],
    )
    def mart_asset(
        context: dg.AssetExecutionContext, paths: CxPaths, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        target = warehouse.connect()
        target.ensure_table(mart.spec)
        target.replace_views(views_of(mart.spec.name))
        rows_by_day, skipped, volumes = {}, [], []
        for date in partition_days(context):
            missing = mart.missing_inputs(paths.output, date)
            if missing:
                skipped.append(date.isoformat())
                context.log.warning(f"{date}: not computed, missing input(s) {missing}")
                continue
            frame = mart.compute(paths.output, Day(date, SETTINGS.reporting_timezone))
            publish(mart.spec, date, frame, paths.output, target)
            volumes.append(volume_check(paths.output, mart.spec.name, date, len(frame)))
            rows_by_day[date] = len(frame)
        return dg.MaterializeResult(
            metadata=run_summary(rows_by_day, days_missing_inputs=skipped),
            check_results=[
                volume_check_result(volumes, mart.spec.name),
                schema_check_result(mart.spec.name, len(rows_by_day), sum(rows_by_day.values())),
            ],
        )

    return mart_asset


MART_ASSETS = [build_mart_asset(mart) for mart in MARTS]
