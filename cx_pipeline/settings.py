"""Settings that shape the Dagster graph itself, read once when definitions load.

Partitions, their time zone, the history window a mart depends on and the
schedule's time must be known before any run starts, so they come from
environment variables rather than run config. Paths and the warehouse URL are
run-time resources (see defs/resources.py).
"""

from __future__ import annotations

import datetime as dt
import os
import zoneinfo
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"


# The Celery broker (and result backend) URL: its name, never its value, is in the code.
CELERY_BROKER_ENV = "CX_CELERY_BROKER"


@dataclass(frozen=True)
class PipelineSettings:
    start_date: dt.date
    reporting_timezone: str
    lookback_days: int
    schedule_time: dt.time
    schedule_timezone: str
    survey_min_responses: int
    repeat_contact_days: int
    # Drops after a day that may still hold its rows (a late export, a drop cut in another
    # time zone): a rerun of the day reads them and restates it.
    late_row_days: int = 3
    # Days after its ticket was closed that a survey answer still finds the ticket's topic
    # and agent group (a ticket leaves the live state when closed: lib/store/ticket_state.py).
    survey_after_close_days: int = 14
    # Days after a late or corrected drop that late_drops_sensor reruns too.
    late_rerun_days: int = 7
    # Steps of a run that may run at once, each in its own process (1: all in one process).
    max_processes: int = 1
    # Run steps on Celery workers (dagster-celery; the `celery` extra) when the broker's URL
    # is set in CX_CELERY_BROKER (read from the environment, never written here: it may
    # carry a password). docs/deployment.md.
    celery: bool = False
    # Who answers for the marts (Dagster owners: "team:<name>" or an e-mail address), and
    # how old a mart's latest day may get before the UI flags it (hours).
    owners: tuple[str, ...] = ("team:cx-data",)
    fresh_hours: int = 30
    # Source mappings with a SQL query, pulled by the pipeline itself each day.
    sql_sources: tuple[Path, ...] = ()

    @classmethod
    def from_env(cls, env: os._Environ[str] | dict[str, str] = os.environ) -> PipelineSettings:
        settings = cls(
            start_date=dt.date.fromisoformat(env.get("CX_START_DATE", "2026-01-01")),
            reporting_timezone=env.get("CX_REPORTING_TIMEZONE", "UTC"),
            lookback_days=int(env.get("CX_LOOKBACK_DAYS", "180")),
            schedule_time=dt.time.fromisoformat(env.get("CX_SCHEDULE_TIME", "06:00")),
            schedule_timezone=env.get(
                "CX_SCHEDULE_TIMEZONE", env.get("CX_REPORTING_TIMEZONE", "UTC")
            ),
            survey_min_responses=int(env.get("CX_SURVEY_MIN_RESPONSES", "30")),
            repeat_contact_days=int(env.get("CX_REPEAT_CONTACT_DAYS", "7")),
            late_row_days=int(env.get("CX_LATE_ROW_DAYS", "3")),
            late_rerun_days=int(env.get("CX_LATE_RERUN_DAYS", "7")),
            survey_after_close_days=int(env.get("CX_SURVEY_AFTER_CLOSE_DAYS", "14")),
            max_processes=int(env.get("CX_MAX_PROCESSES", "1")),
            celery=bool(env.get(CELERY_BROKER_ENV)),
            owners=tuple(o.strip() for o in env.get("CX_OWNERS", "team:cx-data").split(",") if o),
            fresh_hours=int(env.get("CX_FRESH_HOURS", "30")),
            sql_sources=tuple(
                Path(name.strip()) for name in env.get("CX_SQL_SOURCES", "").split(",") if name
            ),
        )
        settings.validate()
        return settings

    @property
    def steps_in_own_processes(self) -> bool:
        """Steps of a run run side by side, each in a process of its own (the multiprocess
        executor or Celery workers): a DuckDB file is then opened per transaction."""
        return self.max_processes > 1 or self.celery

    def validate(self) -> None:
        for name in (self.reporting_timezone, self.schedule_timezone):
            try:
                zoneinfo.ZoneInfo(name)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"unknown time zone {name!r} in cx-pipeline settings") from exc
        if self.late_row_days < 0:
            raise ValueError(f"CX_LATE_ROW_DAYS must be 0 or more, got {self.late_row_days}")
        if self.survey_after_close_days < 0:
            raise ValueError(
                f"CX_SURVEY_AFTER_CLOSE_DAYS must be 0 or more, got {self.survey_after_close_days}"
            )
        if self.lookback_days < 1:
            raise ValueError(f"CX_LOOKBACK_DAYS must be at least 1, got {self.lookback_days}")


SETTINGS = PipelineSettings.from_env()
