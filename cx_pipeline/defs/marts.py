"""Mart assets: the daily metric tables (``agg_daily_<subject>``, ``fct_tickets``) a BI tool reads.

Each mart day is computed from the staged history it needs (declared to Dagster
as a window of earlier staging days), so days can run in any order or alone and
give the same rows. A mart may write several tables from one read of history
(fct_tickets and agg_daily_ticket_activity).
"""

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow as pa

from cx_pipeline.defs.days import DayResults, table_check_specs
from cx_pipeline.defs.metadata import table_definition_metadata
from cx_pipeline.defs.partitions import (
    DAILY,
    ONE_RUN,
    days_back,
    own_previous_day,
    partition_days,
)
from cx_pipeline.defs.resources import CxPaths, MetricSettings, WarehouseResource
from cx_pipeline.defs.schedules import step_priority
from cx_pipeline.lib.metrics import contacts, core, customers, surveys, tickets
from cx_pipeline.lib.metrics.core import Day
from cx_pipeline.lib.quality import partition_rows
from cx_pipeline.lib.store import history, tables, ticket_state
from cx_pipeline.lib.store.parquet import write_frame
from cx_pipeline.lib.store.publish import PublishBatch, publish
from cx_pipeline.lib.store.tables import TableSpec
from cx_pipeline.settings import SETTINGS

ARRIVAL_TABLES = frozenset(spec.name for spec in tables.STAGED_TABLES.values())
LATE = SETTINGS.late_row_days


@dataclass(frozen=True)
class Input:
    """A table a mart reads, declared once: the Dagster dependency and the read both use
    its window (the mart's day and the ``days`` before it; an arrival-day table also the
    late-row days after it) and its columns."""

    table: str
    days: int = 0
    columns: tuple[str, ...] = ()
    # Only enriches (a ticket's customer segment): a day without it is still computed
    # (an event-log source has no customer records).
    optional: bool = False

    @property
    def late_days(self) -> int:
        """Days after the mart's day whose drops it also reads, for the day's late rows
        (staged tables are by arrival day; carried states and marts are not)."""
        return LATE if self.table in ARRIVAL_TABLES else 0

    def dependency(self) -> dg.AssetDep:
        return dg.AssetDep(self.table, partition_mapping=days_back(self.days, self.late_days))


# Tickets by topic compares a day with the 7 before it; one more day of
# arrivals covers a ticket created just before midnight that landed next day.
TOPIC_TICKETS = Input("stg_tickets", days=8, columns=("created_at", "topic"))
# Repeat contacts look back their window, the channel mix 30 days; + 1 arrival day.
CONTACT_TICKETS = Input(
    "stg_tickets",
    days=max(SETTINGS.repeat_contact_days, max(contacts.CHANNEL_WINDOWS)) + 1,
    columns=("customer_id", "created_at", "channel", "topic"),
)
# Ticket volume per customer over 30 days; + 1 arrival day.
VOLUME_TICKETS = Input(
    "stg_tickets", days=customers.VOLUME_WINDOW_DAYS + 1, columns=("customer_id", "created_at")
)
LIVE_TICKETS = Input("stg_tickets", days=history.EVENT_ARRIVAL_SLACK_DAYS)
LIVE_EVENTS = Input("stg_ticket_events", days=history.EVENT_ARRIVAL_SLACK_DAYS)
REOPENS = Input("stg_ticket_events", days=history.EVENT_ARRIVAL_SLACK_DAYS)
ANSWERS = Input("stg_survey_responses", days=history.EVENT_ARRIVAL_SLACK_DAYS)
# Every column but the free-text comment, which no figure reads (a month of answers).
SURVEY_ANSWERS = Input(
    "stg_survey_responses",
    days=history.SURVEY_WINDOW_DAYS,
    columns=tuple(c for c in tables.STAGED_TABLES["survey_responses"].arrow_schema.names
                  if c != "comment"),
)  # fmt: skip
# A survey's ticket (its topic and agent group), looked up by id in the tickets mart's
# carried state: live at the day's end, or left it (closed) in the window of answers or the
# days before it that an answer may follow a close.
SURVEYED_TICKETS = Input(
    tables.FCT_TICKETS.name,
    days=history.SURVEY_WINDOW_DAYS + SETTINGS.survey_after_close_days,
    columns=("ticket_id", "topic", "agent_group"),
    optional=True,
)
SEGMENTS = Input(history.CURRENT_CUSTOMERS, columns=("segment",), optional=True)
CHURN_CUSTOMERS = Input(
    history.CURRENT_CUSTOMERS, columns=("signed_up_at", "churned_at", "plan", "segment")
)
COHORT_CUSTOMERS = Input(history.CURRENT_CUSTOMERS, columns=("signed_up_at", "churned_at"))
SURVEYED_CUSTOMERS = Input(history.CURRENT_CUSTOMERS, columns=("segment", "plan"), optional=True)
PROFILES = Input(history.CURRENT_CUSTOMERS, columns=customers.PROFILE)
DAY_TICKETS = Input(
    tables.FCT_TICKETS.name,
    columns=("ticket_id", "customer_key", "created_at", "first_resolved_at",
             "first_resolution_minutes"),
)  # fmt: skip
BACKLOG_TICKETS = Input(
    tables.FCT_TICKETS.name, columns=("ticket_id", "created_at", "channel", "priority", "status")
)

Compute = Callable[[Path, Day, MetricSettings], dict[str, pd.DataFrame]]


@dataclass(frozen=True)
class Mart:
    name: str
    specs: tuple[TableSpec, ...]
    inputs: tuple[Input, ...]
    compute: Compute
    # A table of this mart whose previous day it reads (a snapshot carried forward).
    carries: str | None = None
    # Carried state this mart writes to Parquet only (table name -> Arrow schema): rows
    # already validated upstream, read back by the mart's next day.
    state: Mapping[str, pa.Schema] = field(default_factory=dict)

    def dependencies(self) -> list[dg.AssetDep]:
        """One per upstream table, over the widest window the mart reads of it."""
        widest: dict[str, Input] = {}
        for item in self.inputs:
            known = widest.get(item.table)
            if known is None or item.days > known.days:
                widest[item.table] = item
        return [item.dependency() for item in widest.values()]

    def missing_inputs(self, output: Path, day: dt.date) -> list[str]:
        """Required tables whose own day is missing (a missing drop): the day is not
        computed, so it shows as missing rather than as a day with nothing in it."""
        optional = {i.table for i in self.inputs if i.optional}
        required = dict.fromkeys(i.table for i in self.inputs if i.table not in optional)
        return [t for t in required if partition_rows(output, t, day) is None]


def single(spec: TableSpec, compute: Callable[[Path, Day], pd.DataFrame]) -> Compute:
    return lambda output, day, _settings: {spec.name: compute(output, day)}


def _tickets_by_topic(output: Path, day: Day) -> pd.DataFrame:
    ticket_rows = history.tickets_created_recently(
        output, day, TOPIC_TICKETS.days, TOPIC_TICKETS.columns, LATE
    )
    return core.tickets_by_topic(ticket_rows, day, SETTINGS.start_date)


def _churn(output: Path, day: Day, _settings: MetricSettings) -> dict[str, pd.DataFrame]:
    customers = history.current_customers(output, day, CHURN_CUSTOMERS.columns)
    return {
        tables.AGG_DAILY_CHURN.name: core.churn(customers, day, SETTINGS.start_date),
        tables.AGG_DAILY_CHURN_BY_SEGMENT.name: core.churn_by_segment(
            customers, day, SETTINGS.start_date
        ),
    }


def _retention_cohorts(output: Path, day: Day) -> pd.DataFrame:
    customers = history.current_customers(output, day, COHORT_CUSTOMERS.columns)
    return core.retention_cohorts(customers, day)


def _surveys(output: Path, day: Day, _settings: MetricSettings) -> dict[str, pd.DataFrame]:
    responses = history.survey_responses(
        output, day, SURVEYED_TICKETS.days, LATE, SURVEYED_CUSTOMERS.columns,
        SURVEYED_TICKETS.columns, SURVEY_ANSWERS.columns,
    )  # fmt: skip
    kinds = surveys.survey_tables(
        responses, day, SETTINGS.survey_min_responses, SETTINGS.start_date
    )
    return {f"agg_daily_{kind}": frame for kind, frame in kinds.items()}


def _tickets(output: Path, day: Day, settings: MetricSettings) -> dict[str, pd.DataFrame]:
    live = ticket_state.load_live_tickets(output, day.date, LIVE_TICKETS.days)
    # The day's late rows count in its figures (a rerun restates it) but are not carried:
    # the state takes them on the day they arrived.
    ticket_rows, events = live.with_late_rows(output, day, LATE).touched_on(day)
    segments = history.current_customers(output, day, SEGMENTS.columns)
    ticket_rows = ticket_rows.merge(
        segments[["customer_id", "segment"]].rename(columns={"segment": "customer_segment"}),
        on="customer_id",
        how="left",
    )
    schedule = settings.schedule()
    facts = tickets.ticket_facts(
        ticket_rows, events, day, settings.sla_targets(), settings.id_salt, schedule
    )
    activity = tickets.ticket_activity(facts, events, day)
    return {
        tables.FCT_TICKETS.name: facts,
        tables.AGG_DAILY_TICKET_ACTIVITY.name: activity,
        tables.AGG_DAILY_WORKLOAD.name: tickets.workload(activity, day, schedule),
        tables.AGG_DAILY_RESOLUTION_TIME.name: core.resolution_time(
            ticket_rows, events, day, schedule
        ),
        **live.advance(facts, day, SETTINGS.lookback_days).frames(),
    }


def _contacts(output: Path, day: Day, _settings: MetricSettings) -> dict[str, pd.DataFrame]:
    recent = history.tickets_created_recently(
        output, day, CONTACT_TICKETS.days, CONTACT_TICKETS.columns, LATE
    )
    return {
        tables.AGG_DAILY_REPEAT_CONTACTS.name: contacts.repeat_contacts(
            recent, day, SETTINGS.repeat_contact_days, SETTINGS.start_date
        ),
        tables.AGG_DAILY_CHANNEL_MIX.name: contacts.channel_mix(recent, day, SETTINGS.start_date),
    }


def _backlog(output: Path, day: Day, _settings: MetricSettings) -> dict[str, pd.DataFrame]:
    facts = history.ticket_states(output, day, list(BACKLOG_TICKETS.columns))
    previous = history.previous_snapshot(output, day, SETTINGS.start_date)
    snapshot = tickets.open_tickets(previous, facts)
    return {
        tables.FCT_OPEN_TICKETS.name: snapshot,
        tables.AGG_DAILY_BACKLOG.name: tickets.backlog(snapshot, day),
    }


def _customers(output: Path, day: Day, settings: MetricSettings) -> dict[str, pd.DataFrame]:
    facts = history.ticket_states(output, day, list(DAY_TICKETS.columns))
    activity = customers.day_activity(
        facts,
        history.events_of_day(output, day, "reopened", LATE),
        history.answers_of_day(output, day, LATE),
        day,
        settings.id_salt,
    )
    previous = history.previous_snapshot(output, day, SETTINGS.start_date, tables.DIM_CUSTOMERS)
    profiles = history.current_customers(output, day, PROFILES.columns)
    snapshot = customers.update_snapshot(previous, activity, profiles, day, settings.id_salt)
    recent = history.tickets_created_recently(
        output, day, VOLUME_TICKETS.days, VOLUME_TICKETS.columns, LATE
    )
    recent = recent[recent["created_at"] >= day.shifted(1 - customers.VOLUME_WINDOW_DAYS)]
    tickets_30d = tickets.hash_ids(recent["customer_id"], settings.id_salt).value_counts()
    scores = customers.health(
        snapshot, tickets_30d, day, settings.health_weights, settings.plan_scores,
        SETTINGS.start_date,
    )  # fmt: skip
    return {tables.DIM_CUSTOMERS.name: snapshot, tables.AGG_DAILY_CUSTOMER_HEALTH.name: scores}


def _calendar(_output: Path, day: Day, settings: MetricSettings) -> dict[str, pd.DataFrame]:
    minutes = settings.schedule().working_minutes(day.date)
    return {tables.DIM_DATE.name: core.calendar_row(day.date, minutes)}


MARTS = (
    Mart(
        "tickets",
        (
            tables.FCT_TICKETS,
            tables.AGG_DAILY_TICKET_ACTIVITY,
            tables.AGG_DAILY_WORKLOAD,
            tables.AGG_DAILY_RESOLUTION_TIME,
        ),
        (LIVE_TICKETS, LIVE_EVENTS, SEGMENTS),
        _tickets,
        # The live tickets (open or recently solved) with their events: the history a
        # day needs, carried forward instead of reread (lib/store/ticket_state.py).
        carries=tables.FCT_TICKETS.name,
        state=ticket_state.STATE_SCHEMAS,
    ),
    Mart(
        "tickets_by_topic",
        (tables.AGG_DAILY_TICKETS_BY_TOPIC,),
        (TOPIC_TICKETS,),
        single(tables.AGG_DAILY_TICKETS_BY_TOPIC, _tickets_by_topic),
    ),
    Mart(
        "contacts",
        (tables.AGG_DAILY_REPEAT_CONTACTS, tables.AGG_DAILY_CHANNEL_MIX),
        (CONTACT_TICKETS,),
        _contacts,
    ),
    Mart(
        "churn",
        (tables.AGG_DAILY_CHURN, tables.AGG_DAILY_CHURN_BY_SEGMENT),
        (CHURN_CUSTOMERS,),
        _churn,
    ),
    Mart(
        "customers",
        (tables.DIM_CUSTOMERS, tables.AGG_DAILY_CUSTOMER_HEALTH),
        (DAY_TICKETS, REOPENS, ANSWERS, PROFILES, VOLUME_TICKETS),
        _customers,
        carries=tables.DIM_CUSTOMERS.name,
    ),
    Mart(
        "retention_cohorts",
        (tables.AGG_RETENTION_COHORTS,),
        (COHORT_CUSTOMERS,),
        single(tables.AGG_RETENTION_COHORTS, _retention_cohorts),
    ),
    Mart(
        "surveys",
        (tables.AGG_DAILY_NPS, tables.AGG_DAILY_CSAT, tables.AGG_DAILY_CES),
        # A survey tool's export alone is enough: customers and tickets only add breakdowns.
        (SURVEY_ANSWERS, SURVEYED_CUSTOMERS, SURVEYED_TICKETS),
        _surveys,
    ),
    Mart(
        "backlog",
        (tables.FCT_OPEN_TICKETS, tables.AGG_DAILY_BACKLOG),
        (BACKLOG_TICKETS,),
        _backlog,
        carries=tables.FCT_OPEN_TICKETS.name,
    ),
    # The calendar needs no input: each day describes itself.
    Mart("calendar", (tables.DIM_DATE,), (), _calendar),
)


def build_mart_asset(mart: Mart) -> dg.AssetsDefinition:
    deps = mart.dependencies()
    specs = [
        dg.AssetSpec(
            spec.name,
            # Every table of a mart that carries a snapshot is computed from the snapshot's
            # day before, so each waits for it (a run may hold only some of the tables).
            deps=[*deps, own_previous_day(mart.carries)] if mart.carries else deps,
            group_name="marts",
            owners=list(SETTINGS.owners),
            # The daily run's day should land within a day and a bit of the one before.
            freshness_policy=dg.FreshnessPolicy.time_window(
                fail_window=dt.timedelta(hours=SETTINGS.fresh_hours)
            ),
            partitions_def=DAILY,
            kinds={"pandas", "parquet"},
            description=spec.description,
            metadata=table_definition_metadata(spec),
        )
        for spec in mart.specs
    ]
    read_back = None if mart.state else mart.carries
    checks = [
        check for spec in mart.specs for check in table_check_specs(spec.name, spec.model.__name__)
    ]

    @dg.multi_asset(
        name=f"mart_{mart.name}",
        op_tags=step_priority(f"mart_{mart.name}"),
        specs=specs,
        check_specs=checks,
        partitions_def=DAILY,
        backfill_policy=ONE_RUN,
        # Lets the checks report per day (days.py).
        can_subset=True,
    )
    def mart_asset(
        context: dg.AssetExecutionContext,
        paths: CxPaths,
        warehouse: WarehouseResource,
        metric_settings: MetricSettings,
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckEvaluation]:
        target = warehouse.connect()
        # A run may select some of the mart's tables (the backfill daemon splits a mart whose
        # tables depend on different days): all are computed, the selected are written.
        selected = {key.to_user_string() for key in context.selected_asset_keys}
        written = [spec for spec in mart.specs if spec.name in selected]
        results = DayResults(context)
        # A small day costs each table a pandera pass and a warehouse transaction, whatever
        # its rows: the run's days go out in batches, but for the snapshot the next day
        # reads back (a mart with a state of its own reads that instead).
        batch = PublishBatch(paths.output, target)
        # One warehouse connection for the step (opening a DuckDB file costs tens of ms),
        # unless steps side by side share the file (Warehouse.session).
        with target.session():
            for date in partition_days(context):
                missing = mart.missing_inputs(paths.output, date)
                if missing:
                    context.log.warning(f"{date}: not computed, missing input(s) {missing}")
                    for spec in written:
                        results.not_written(spec.name, date, f"missing input(s) {missing}")
                    continue
                frames = mart.compute(
                    paths.output, Day(date, SETTINGS.reporting_timezone), metric_settings
                )
                for spec in written:
                    if spec.name == read_back:
                        publish(spec, date, frames[spec.name], paths.output, target)
                    else:
                        batch.add(spec, date, frames[spec.name])
                # The state after the day's snapshot: a crash before it leaves the previous
                # state, and a rerun recomputes the day (and any held back) from the state
                # of the day before.
                for name, schema in mart.state.items():
                    write_frame(paths.output, name, date, frames[name], schema)
                for spec in written:
                    results.table_written(paths.output, spec.name, date, frames[spec.name])
            batch.flush()
        yield from results.results(spec.name for spec in written)

    return mart_asset


MART_ASSETS = [build_mart_asset(mart) for mart in MARTS]
