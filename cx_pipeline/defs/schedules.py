"""The daily job and its schedule: every morning, run the previous reporting day."""

import datetime as dt
import zoneinfo

import dagster as dg

from cx_pipeline.settings import CELERY_BROKER_ENV, SETTINGS, PipelineSettings

# A step's process is forked from a server that imported the definitions (and Dagster,
# pandas, DuckDB) once per run, instead of a fresh Python importing them for each step
# (about 3 s a step). Its children keep the environment the run's process had when its
# first step started: each `cx-pipeline` command and each run the UI or the daemon
# launches is a process of its own, so that is the run's environment.
STEP_PROCESS_START = {"forkserver": {"preload_modules": ["cx_pipeline.definitions"]}}


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
