"""The daily job and its schedule: every morning, run the previous reporting day."""

import datetime as dt
import zoneinfo

import dagster as dg
from dagster._core.executor import child_process_executor

from cx_pipeline.settings import CELERY_BROKER_ENV, SETTINGS, PipelineSettings

# A step's process is forked from a server that imported the definitions (and Dagster,
# pandas, DuckDB) once per run, instead of a fresh Python importing them for each step
# (about 3 s a step). Its children keep the environment the run's process had when its
# first step started: each `cx-pipeline` command and each run the UI or the daemon
# launches is a process of its own, so that is the run's environment.
STEP_PROCESS_START = {"forkserver": {"preload_modules": ["cx_pipeline.definitions"]}}

# The multiprocess executor takes one event from each running step per pass and waits up
# to TICK (Dagster's 20 ms) on a step that has none to give. A step ends with hundreds of
# events (a materialization and checks per table and day); while another step computes
# they come through at 50 a second, and the next step starts only once they are through
# (3-4 s between the demo's steps). At 2 ms the wait costs the run's process next to
# nothing. A test checks that Dagster still has the constant.
child_process_executor.TICK = 0.002


def run_executor(settings: PipelineSettings) -> dg.ExecutorDefinition:
    """One process for every step (the default: no process start-up, and a DuckDB file
    takes one writing process at a time); up to ``max_processes`` steps at once, each in
    its own process (independent marts side by side; worth it with PostgreSQL, whose
    writers do not wait for each other); or each step a task for Celery workers, which
    may run on other machines (they need the same code, Parquet root and warehouse)."""
    if not settings.steps_in_own_processes:
        return dg.in_process_executor
    if settings.celery:
        from dagster_celery import celery_executor  # the `celery` extra

        broker = {"env": CELERY_BROKER_ENV}  # the URL stays in the environment
        return celery_executor.configured({"broker": broker, "backend": broker})
    return dg.multiprocess_executor.configured(
        {"max_concurrent": settings.max_processes, "start_method": STEP_PROCESS_START}
    )


# With steps side by side, the tickets mart's inputs start first: it is the run's longest
# step (it reads the staged tickets and events and the customers' segments), and the
# backlog, customers and surveys marts wait for it. The other sources and marts then fill
# the other cores while it runs, instead of delaying its start. mart_customers, the
# longest of the marts that wait for it, follows it first.
FIRST_STEPS = (
    "raw_tickets", "raw_ticket_events", "raw_customers",
    "stg_tickets", "stg_ticket_events", "stg_customers", "int_current_customers",
    "mart_tickets", "mart_customers",
)  # fmt: skip


def step_priority(step: str) -> dict[str, str]:
    """The op tag that orders ``step`` among the steps ready at once (higher first)."""
    return {"dagster/priority": "1" if step in FIRST_STEPS else "0"}


# Every run's executor: cx_daily's, and (through Definitions) the UI's "Materialize" and
# `dagster asset materialize`, which would otherwise start a process per step.
RUN_EXECUTOR = run_executor(SETTINGS)

DAILY_JOB = dg.define_asset_job(
    "cx_daily",
    selection=dg.AssetSelection.all(),
    description="Every asset for one day (or a range): raw -> staging -> marts.",
    executor_def=RUN_EXECUTOR,
)


def previous_day(scheduled_at: dt.datetime, reporting_timezone: str) -> dt.date:
    """The reporting day before the one the schedule fires in."""
    local = scheduled_at.astimezone(zoneinfo.ZoneInfo(reporting_timezone))
    return local.date() - dt.timedelta(days=1)


@dg.schedule(
    job=DAILY_JOB,
    cron_schedule=f"{SETTINGS.schedule_time.minute} {SETTINGS.schedule_time.hour} * * *",
    execution_timezone=SETTINGS.schedule_timezone,
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Runs yesterday's partition each morning (CX_SCHEDULE_TIME, CX_SCHEDULE_TIMEZONE).",
)
def cx_daily_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    scheduled_at = context.scheduled_execution_time
    if scheduled_at is None:
        return dg.SkipReason("no scheduled time")
    day = previous_day(scheduled_at, SETTINGS.reporting_timezone)
    if day < SETTINGS.start_date:
        return dg.SkipReason(f"{day} is before the first partition {SETTINGS.start_date}")
    return dg.RunRequest(run_key=day.isoformat(), partition_key=day.isoformat())
