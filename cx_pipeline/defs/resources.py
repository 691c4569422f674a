"""Run-time settings as Dagster resources: where drops land, where outputs go, the warehouse.

Defaults make a fresh checkout run with no settings: everything lives under
``./data`` (or ``$CX_DATA_DIR``) and the warehouse is a DuckDB file there. A
production warehouse URL carries a password, so it is only ever read from the
``CX_WAREHOUSE_URL`` environment variable through ``dagster.EnvVar``: Dagster
then shows the variable's name, never its value.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping
from pathlib import Path

import dagster as dg
import pandas as pd

from cx_pipeline.defs.metadata import WAREHOUSE_URL_ENV  # noqa: E402
from cx_pipeline.lib.ingest.staging import PlausibleTimes
from cx_pipeline.lib.metrics.business_hours import BusinessSchedule
from cx_pipeline.lib.metrics.customers import COMPONENTS, DEFAULT_PLAN_SCORES, DEFAULT_WEIGHTS
from cx_pipeline.lib.metrics.tickets import SlaTargets
from cx_pipeline.lib.store.warehouse import Warehouse
from cx_pipeline.settings import DEFAULT_DATA_DIR, SETTINGS


def data_dir() -> Path:
    return Path(os.environ.get("CX_DATA_DIR", DEFAULT_DATA_DIR)).resolve()


def landing_dir() -> Path:
    """Where drops land: ``$CX_LANDING_DIR``, default ``<data dir>/landing`` (the one rule the
    pipeline, ``generate``, ``import`` and the demo all follow)."""
    return Path(os.environ.get("CX_LANDING_DIR", data_dir() / "landing"))


def output_dir() -> Path:
    """The Parquet root: ``$CX_OUTPUT_DIR``, default ``<data dir>/output``."""
    return Path(os.environ.get("CX_OUTPUT_DIR", data_dir() / "output"))


def default_duckdb_url() -> str:
    return f"duckdb:///{data_dir() / 'warehouse.duckdb'}"


class CxPaths(dg.ConfigurableResource):
    """Folders: the landing root (``<source>/<YYYY-MM-DD>.<ext>`` drops) and the Parquet root."""

    landing_dir: str
    output_dir: str

    @property
    def landing(self) -> Path:
        return Path(self.landing_dir)

    @property
    def output(self) -> Path:
        return Path(self.output_dir)


class WarehouseResource(dg.ConfigurableResource):
    """The SQL warehouse the tables are loaded into (SQLAlchemy URL; DuckDB or PostgreSQL)."""

    url: str
    db_schema: str | None = None
    # Steps run side by side in processes of their own (CX_MAX_PROCESSES > 1, Celery): a
    # DuckDB file is then opened for each transaction, not held for a whole step.
    shared_by_processes: bool = False

    def connect(self) -> Warehouse:
        return Warehouse(self.url, self.db_schema, shared_by_processes=self.shared_by_processes)


class StagingPolicy(dg.ConfigurableResource):
    """How drops are read and how much bad input a day may have."""

    # Share of a drop's rows that may be rejected before the run fails (0.05 = 5 %).
    reject_threshold: float = 0.05
    # Per source, overriding reject_threshold (e.g. {"survey_responses": 0.2}).
    reject_thresholds: dict[str, float] = {}
    # Zone of timestamps written without one (e.g. "2026-03-04 09:00").
    naive_timezone: str = "UTC"
    # Text encoding of CSV and JSON lines drops.
    encoding: str = "utf-8"
    # A day with no drop: "fail" the run (default) or "skip" the day (reported, never
    # treated as a day with zero rows).
    missing_drops: str = "fail"
    # Timestamps must fall from this date on, and before the end of the drop's day plus
    # max_days_ahead days; others reject their row (a typo, a 1900 or 2200 placeholder).
    plausible_from: str = "1970-01-01"
    max_days_ahead: int = 2

    def threshold_for(self, source: str) -> float:
        return self.reject_thresholds.get(source, self.reject_threshold)

    def plausible_times(self, day: dt.date) -> PlausibleTimes:
        return PlausibleTimes(
            pd.Timestamp(self.plausible_from, tz="UTC"),
            pd.Timestamp(day + dt.timedelta(days=1 + self.max_days_ahead), tz="UTC"),
        )


WORKDAYS = ("mon", "tue", "wed", "thu", "fri")


class MetricSettings(dg.ConfigurableResource):
    """Settings of the metric definitions that may differ per team."""

    # SLA targets in hours, per priority (low, normal, high, urgent); the defaults apply
    # to a priority not listed.
    first_response_hours: dict[str, float] = {}
    resolution_hours: dict[str, float] = {}
    default_first_response_hours: float = 24
    default_resolution_hours: float = 48
    # Salt of the hash that replaces customer ids in mart tables. A secret: set
    # CX_ID_SALT (read through dagster.EnvVar); without it a fixed, public salt is used.
    id_salt: str = "cx-pipeline-public-default-salt"
    # Business hours for the *_business_minutes figures: one interval per weekday in
    # business_timezone (empty = the reporting time zone), holiday dates, and dated
    # changes of the weekly hours ({"2026-06-01": {"mon": "08:00-18:00", ...}}).
    business_timezone: str = ""
    business_hours: dict[str, str] = dict.fromkeys(WORKDAYS, "09:00-17:00")
    holidays: list[str] = []
    business_hours_changes: dict[str, dict[str, str]] = {}
    # Customer health: the weight of each component (0 leaves it out) and the 0-1 score
    # of each plan tier (a plan not listed scores 0.5).
    health_weights: dict[str, float] = DEFAULT_WEIGHTS
    plan_scores: dict[str, float] = DEFAULT_PLAN_SCORES

    def sla_targets(self) -> SlaTargets:
        return SlaTargets(
            first_response={k: v * 60 for k, v in self.first_response_hours.items()},
            resolution={k: v * 60 for k, v in self.resolution_hours.items()},
            default_first_response=self.default_first_response_hours * 60,
            default_resolution=self.default_resolution_hours * 60,
        )

    def validate_health_weights(self) -> None:
        unknown = set(self.health_weights) - set(COMPONENTS)
        if unknown or sum(self.health_weights.values()) <= 0:
            raise ValueError(
                f"CX_HEALTH_WEIGHTS: weights of {list(COMPONENTS)}, not all zero; "
                f"unknown: {sorted(unknown)}"
            )

    def schedule(self) -> BusinessSchedule:
        return BusinessSchedule.from_settings(
            self.business_timezone or SETTINGS.reporting_timezone,
            self.business_hours,
            self.holidays,
            self.business_hours_changes,
        )


def _suffixed(env: Mapping[str, str], prefix: str) -> dict[str, float]:
    """Settings named PREFIX<KEY>=value, as {key: value} (keys lower case)."""
    return {
        name.removeprefix(prefix).lower(): float(value)
        for name, value in env.items()
        if name.startswith(prefix)
    }


def metric_settings_from_env(env: Mapping[str, str] = os.environ) -> MetricSettings:
    salt: dict[str, object] = {"id_salt": dg.EnvVar("CX_ID_SALT")} if "CX_ID_SALT" in env else {}
    hours: dict[str, object] = {
        field: _json_setting(env, name)
        for field, name in (
            ("business_hours", "CX_BUSINESS_HOURS"),
            ("business_hours_changes", "CX_BUSINESS_HOURS_CHANGES"),
            ("health_weights", "CX_HEALTH_WEIGHTS"),
            ("plan_scores", "CX_PLAN_SCORES"),
        )
        if name in env
    }
    settings = MetricSettings(
        first_response_hours=_suffixed(env, "CX_SLA_FIRST_RESPONSE_HOURS_"),
        resolution_hours=_suffixed(env, "CX_SLA_RESOLUTION_HOURS_"),
        default_first_response_hours=float(env.get("CX_SLA_FIRST_RESPONSE_HOURS", "24")),
        default_resolution_hours=float(env.get("CX_SLA_RESOLUTION_HOURS", "48")),
        business_timezone=env.get("CX_BUSINESS_TIMEZONE", ""),
        holidays=[day.strip() for day in env.get("CX_HOLIDAYS", "").split(",") if day.strip()],
        **hours,  # type: ignore[arg-type]
        **salt,  # type: ignore[arg-type]
    )
    settings.schedule()  # a bad schedule fails at load time, naming the setting
    settings.validate_health_weights()
    return settings


def _json_setting(env: Mapping[str, str], name: str) -> object:
    try:
        return json.loads(env[name])
    except json.JSONDecodeError as error:
        raise ValueError(f"{name} is not valid JSON: {error}") from None


def staging_policy_from_env(env: Mapping[str, str] = os.environ) -> StagingPolicy:
    per_source = _suffixed(env, "CX_REJECT_THRESHOLD_")
    return StagingPolicy(
        reject_threshold=float(env.get("CX_REJECT_THRESHOLD", "0.05")),
        reject_thresholds=per_source,
        naive_timezone=env.get("CX_NAIVE_TIMEZONE", "UTC"),
        encoding=env.get("CX_DROP_ENCODING", "utf-8"),
        missing_drops=env.get("CX_MISSING_DROPS", "fail"),
        plausible_from=env.get("CX_PLAUSIBLE_FROM", "1970-01-01"),
        max_days_ahead=int(env.get("CX_MAX_DAYS_AHEAD", "2")),
    )


def default_resources() -> dict[str, dg.ConfigurableResource]:
    url: str | dg.EnvVar = (
        dg.EnvVar(WAREHOUSE_URL_ENV) if WAREHOUSE_URL_ENV in os.environ else default_duckdb_url()
    )
    return {
        "paths": CxPaths(landing_dir=str(landing_dir()), output_dir=str(output_dir())),
        "warehouse": WarehouseResource(
            url=url,  # type: ignore[arg-type]
            db_schema=os.environ.get("CX_WAREHOUSE_SCHEMA") or None,
            shared_by_processes=SETTINGS.steps_in_own_processes,
        ),
        "policy": staging_policy_from_env(),
        "metric_settings": metric_settings_from_env(),
    }
