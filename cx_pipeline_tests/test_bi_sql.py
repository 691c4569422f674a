"""The SQL layer BI tools use: roll-up views (both engines) and the read-only role (PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import subprocess

import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa

from cx_pipeline.lib.store.tables import (
    AGG_DAILY_BACKLOG,
    AGG_DAILY_CHURN,
    AGG_DAILY_CHURN_BY_SEGMENT,
    AGG_DAILY_NPS,
    AGG_DAILY_RESOLUTION_TIME,
    TableSpec,
)
from cx_pipeline.lib.store.views import VIEWS, views_of
from cx_pipeline.lib.store.warehouse import Warehouse
from cx_pipeline.settings import PROJECT_ROOT

MONDAY = dt.date(2026, 3, 2)


def resolution_day(count: int, minutes_sum: float) -> pd.DataFrame:
    calendar = pd.DataFrame(
        {
            "channel": ["email"],
            "priority": ["high"],
            "tickets_resolved": [count],
            "resolution_minutes_sum": [minutes_sum],
            "resolution_minutes_mean": [minutes_sum / count],
            "resolution_minutes_median": [minutes_sum / count],
            "resolution_minutes_p90": [minutes_sum / count],
            "tickets_first_responded": [0],
            "first_response_minutes_sum": [0.0],
            "first_response_minutes_mean": [float("nan")],
            "first_response_minutes_median": [float("nan")],
            "first_response_minutes_p90": [float("nan")],
        }
    )
    # A 24/7 schedule: the business figures equal the calendar ones.
    business = calendar.filter(like="_minutes_").rename(
        columns=lambda name: name.replace("_minutes_", "_business_minutes_")
    )
    return pd.concat([calendar, business], axis=1)


def churn_day(start: int, new: int, churned: int) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "customers_at_start": start,
                "customers_new": new,
                "customers_churned": churned,
                "customers_at_end": start + new - churned,
                "churn_rate": churned / start,
                "customers_at_start_30d": start,
                "customers_new_30d": new,
                "customers_churned_30d": churned,
                "churn_rate_30d": churned / start,
                "days_covered_30d": 30,
            }
        ]
    )


def test_weekly_views_roll_up_numerators_not_daily_rates(warehouse_url: str) -> None:
    warehouse = Warehouse(warehouse_url)
    # Monday: 1 ticket in 10 min; Tuesday: 3 tickets in 90 min.
    # Mean of daily means = (10 + 30) / 2 = 20; the week's mean = 100 / 4 = 25.
    for offset, (count, total) in enumerate([(1, 10.0), (3, 90.0)]):
        day = MONDAY + dt.timedelta(days=offset)
        warehouse.replace_partition(
            AGG_DAILY_RESOLUTION_TIME,
            day,
            AGG_DAILY_RESOLUTION_TIME.to_arrow(resolution_day(count, total)),
        )
    # Churn: 100 at the start of the week; +5 -2 on Monday, +1 -4 on Tuesday.
    for offset, (start, new, churned) in enumerate([(100, 5, 2), (103, 1, 4)]):
        day = MONDAY + dt.timedelta(days=offset)
        warehouse.replace_partition(
            AGG_DAILY_CHURN, day, AGG_DAILY_CHURN.to_arrow(churn_day(start, new, churned))
        )
    for table in ("agg_daily_resolution_time", "agg_daily_churn"):
        warehouse.replace_views(views_of(table))

    week = warehouse.read_frame("SELECT * FROM agg_weekly_resolution_time").iloc[0]
    assert str(week["period_start"])[:10] == "2026-03-02"
    assert week["tickets_resolved"] == 4
    assert week["resolution_minutes_mean"] == pytest.approx(25.0)

    churn = warehouse.read_frame("SELECT * FROM agg_weekly_churn").iloc[0]
    assert churn["customers_at_start"] == 100
    assert churn["customers_at_end"] == 100
    assert (churn["customers_new"], churn["customers_churned"]) == (6, 6)
    assert churn["churn_rate"] == pytest.approx(0.06)
    # Retention: (at end - new) / at start = (100 - 6) / 100.
    assert churn["retention_rate"] == pytest.approx(0.94)


def test_every_view_is_valid_sql_on_both_engines(warehouse_url: str) -> None:
    from cx_pipeline.lib.store.tables import MART_TABLES

    warehouse = Warehouse(warehouse_url)
    for spec in MART_TABLES:
        warehouse.ensure_table(spec)
        warehouse.replace_views(views_of(spec.name))
    for view in VIEWS:
        assert warehouse.read_frame(f"SELECT * FROM {view.name}").empty
    # Every view column a BI tool lists carries what it means.
    comment_sql = {
        "duckdb": "SELECT comment FROM duckdb_columns() WHERE table_name = :view "
        "AND column_name = :column",
        "postgresql": "SELECT col_description(CAST(:view AS regclass), "
        "(SELECT attnum FROM pg_attribute WHERE attrelid = CAST(:view AS regclass) "
        "AND attname = :column))",
    }[warehouse.dialect]
    comment = lambda view, column: warehouse.read_frame(  # noqa: E731
        comment_sql, {"view": view, "column": column}
    ).iloc[0, 0]
    assert comment("agg_weekly_reopen_cohort", "reopen_rate_7_days") == (
        "reopened_within_7_days / tickets_resolved."
    )
    assert comment("agg_weekly_nps", "promoters") == "Answers 9-10 (the number of advocates)."
    assert comment("agg_monthly_backlog", "period_start").startswith("First day of the period")


def test_read_only_role_sees_only_the_output_schema(postgres_url: str) -> None:
    owner = Warehouse(postgres_url, schema="cx")
    owner.replace_partition(AGG_DAILY_CHURN, MONDAY, AGG_DAILY_CHURN.to_arrow(churn_day(10, 1, 1)))
    with owner.transaction() as conn:
        conn.exec_driver_sql("CREATE TABLE public.secrets (x int)")
    admin = sa.make_url(postgres_url)
    libpq_url = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    script = PROJECT_ROOT / "sql" / "postgresql" / "readonly_role.sql"
    for _ in range(2):  # re-running the script is harmless
        subprocess.run(
            ["psql", libpq_url, "-q", "-v", "schema=cx", "-v", "role=bi_reader",
             "-v", "password=reader-pw", "-v", "owner=cx", "-f", str(script)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
    # A table the pipeline creates later is readable too (default privileges).
    owner.replace_partition(
        AGG_DAILY_RESOLUTION_TIME,
        MONDAY,
        AGG_DAILY_RESOLUTION_TIME.to_arrow(resolution_day(1, 5.0)),
    )
    reader = sa.create_engine(admin.set(username="bi_reader", password="reader-pw"))
    with reader.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM cx.agg_daily_churn").scalar() == 1
        assert (
            conn.exec_driver_sql("SELECT COUNT(*) FROM cx.agg_daily_resolution_time").scalar() == 1
        )
    for statement in ("SELECT * FROM public.secrets", "DELETE FROM cx.agg_daily_churn"):
        with reader.connect() as conn, pytest.raises(sa.exc.DBAPIError):
            conn.exec_driver_sql(statement)
    reader.dispose()


def test_weekly_workload_divides_solved_tickets_by_working_days(warehouse_url: str) -> None:
    from cx_pipeline.lib.store.tables import AGG_DAILY_WORKLOAD

    warehouse = Warehouse(warehouse_url)
    # Mon-Fri: 10 solved each, working days; Sat and Sun: 1 solved each, closed.
    for offset in range(7):
        working = int(offset < 5)
        day = pd.DataFrame(
            {
                "tickets_created": [0],
                "tickets_solved": [10 if working else 1],
                "working_day": [working],
                "working_minutes": [480.0 * working],
                "tickets_solved_per_working_day": [10.0 if working else float("nan")],
            }
        )
        date = MONDAY + dt.timedelta(days=offset)
        warehouse.replace_partition(AGG_DAILY_WORKLOAD, date, AGG_DAILY_WORKLOAD.to_arrow(day))
    warehouse.replace_views(views_of("agg_daily_workload"))
    week = warehouse.read_frame("SELECT * FROM agg_weekly_workload").iloc[0]
    # 52 solved over 5 working days (weekend solves count, weekend days do not).
    assert (week["tickets_solved"], week["working_days"]) == (52, 5)
    assert week["tickets_solved_per_working_day"] == pytest.approx(10.4)


def test_weekly_churn_by_segment_rolls_up_each_plan(warehouse_url: str) -> None:
    warehouse = Warehouse(warehouse_url)
    # Plan pro: 10 at the start of the week, -1 on Monday, +2 -1 on Tuesday (8 + 2 = 10 at
    # the end); plan free: 4, nothing happens.
    days = [{"pro": (10, 0, 1), "free": (4, 0, 0)}, {"pro": (9, 2, 1), "free": (4, 0, 0)}]
    for offset, plans in enumerate(days):
        rows = pd.concat(
            [
                churn_day(*counts).assign(breakdown="plan", breakdown_value=plan)
                for plan, counts in plans.items()
            ],
            ignore_index=True,
        )
        spec = AGG_DAILY_CHURN_BY_SEGMENT
        warehouse.replace_partition(spec, MONDAY + dt.timedelta(days=offset), spec.to_arrow(rows))
    warehouse.replace_views(views_of("agg_daily_churn_by_segment"))
    week = warehouse.read_frame(
        "SELECT * FROM agg_weekly_churn_by_segment ORDER BY breakdown_value"
    ).set_index("breakdown_value")
    pro = week.loc["pro"]
    assert (pro["customers_at_start"], pro["customers_at_end"]) == (10, 10)
    assert (pro["customers_new"], pro["customers_churned"]) == (2, 2)
    assert pro["churn_rate"] == pytest.approx(0.2)
    assert pro["retention_rate"] == pytest.approx(0.8)  # (10 - 2) / 10
    assert week.loc["free", "churn_rate"] == 0


def placeholder_row(spec: TableSpec, **values: object) -> dict:
    """A row of ``spec`` with the given values; every other column a placeholder of its
    type (the views under test do not read them)."""
    placeholders = {"string": "x", "double": 0.0, "int64": 0, "bool": False}
    row = {field.name: placeholders.get(str(field.type)) for field in spec.arrow_schema}
    return {**row, **values}


def write_days(warehouse: Warehouse, spec: TableSpec, rows: dict[str, list[dict]]) -> None:
    for day, day_rows in rows.items():
        table = pa.Table.from_pylist(day_rows, schema=spec.arrow_schema)
        warehouse.replace_partition(spec, dt.date.fromisoformat(day), table)
    warehouse.replace_views(views_of(spec.name))


def _ticket_row(ticket_id: str, resolved: str | None, reopened: str | None = None) -> dict:
    """An fct_tickets row with the two instants the reopen cohort reads."""
    from cx_pipeline.lib.store.tables import FCT_TICKETS

    instant = lambda text: pd.Timestamp(text, tz="UTC") if text else None  # noqa: E731
    return placeholder_row(
        FCT_TICKETS,
        ticket_id=ticket_id,
        created_at=instant("2026-03-02 08:00"),
        first_resolved_at=instant(resolved),
        first_reopened_at=instant(reopened),
    )


def test_reopen_cohort_counts_reopens_within_the_window_of_the_first_resolution(
    warehouse_url: str,
) -> None:
    from cx_pipeline.lib.store.tables import FCT_TICKETS

    # Each ticket's rows by day, as the tickets mart writes them (state at the day's end):
    # T1 solved 03-02 10:00, reopened 03-04 (2 days: within 7 and 30); T2 solved 03-03,
    # reopened 03-12 (9 days: within 30 only); T3 solved 03-04, never reopened; T4 never
    # solved; T5 solved 03-09 (the next week).
    rows = {
        "2026-03-02": [_ticket_row("T1", "2026-03-02 10:00"), _ticket_row("T4", None)],
        "2026-03-03": [_ticket_row("T2", "2026-03-03 09:00")],
        "2026-03-04": [
            _ticket_row("T1", "2026-03-02 10:00", "2026-03-04 10:00"),
            _ticket_row("T3", "2026-03-04 09:00"),
        ],
        "2026-03-09": [_ticket_row("T5", "2026-03-09 09:00")],
        "2026-03-12": [_ticket_row("T2", "2026-03-03 09:00", "2026-03-12 09:00")],
    }
    warehouse = Warehouse(warehouse_url)
    write_days(warehouse, FCT_TICKETS, rows)
    weeks = warehouse.read_frame(
        "SELECT * FROM agg_weekly_reopen_cohort ORDER BY period_start"
    ).to_dict("records")
    first, second = weeks
    assert (first["tickets_resolved"], first["reopened_within_7_days"]) == (3, 1)
    assert first["reopened_within_30_days"] == 2
    assert first["reopen_rate_7_days"] == pytest.approx(1 / 3)
    assert first["reopen_rate_30_days"] == pytest.approx(2 / 3)
    # Data runs to 03-12; the week's last cohort day is 03-04: 8 days observed, so its
    # 7-day figure is final and its 30-day figure may still grow.
    assert first["days_observed_after"] == 8
    assert (second["tickets_resolved"], second["reopened_within_30_days"]) == (1, 0)
    assert second["days_observed_after"] == 3
    month = warehouse.read_frame("SELECT * FROM agg_monthly_reopen_cohort").iloc[0]
    assert (month["tickets_resolved"], month["reopened_within_30_days"]) == (4, 2)


def test_survey_and_backlog_roll_ups_recompute_from_counts_and_stocks(warehouse_url: str) -> None:
    warehouse = Warehouse(warehouse_url)

    def nps_row(window: int, responses: int, promoters: int, detractors: int) -> dict:
        return placeholder_row(
            AGG_DAILY_NPS, window_days=window, breakdown="all", breakdown_value="(all)",
            responses=responses, promoters=promoters, detractors=detractors,
            passives=responses - promoters - detractors,
        )  # fmt: skip

    # Monday 3 promoters and 1 detractor (NPS 50); Tuesday 1 detractor (NPS -100). The
    # week: 3 promoters, 2 detractors of 5 answers, NPS 20 (not the mean of -25). The
    # trailing 7-day row of Tuesday is not an answer of its own and is left out.
    write_days(
        warehouse,
        AGG_DAILY_NPS,
        {
            "2026-03-02": [nps_row(1, 4, 3, 1)],
            "2026-03-03": [nps_row(1, 1, 0, 1), nps_row(7, 5, 3, 2)],
        },
    )
    week = warehouse.read_frame("SELECT * FROM agg_weekly_nps").iloc[0]
    assert (week["responses"], week["promoters"], week["detractors"]) == (5, 3, 2)
    assert week["nps"] == pytest.approx(20.0)
    # The backlog is a stock: a week's figure is its last day's, per channel x priority.
    backlog = lambda channel, priority, open_tickets: placeholder_row(  # noqa: E731
        AGG_DAILY_BACKLOG, channel=channel, priority=priority, open_tickets=open_tickets
    )
    write_days(
        warehouse,
        AGG_DAILY_BACKLOG,
        {
            "2026-03-02": [backlog("email", "high", 10)],
            "2026-03-04": [backlog("email", "high", 7), backlog("chat", "low", 2)],
            "2026-03-09": [backlog("email", "high", 5)],
        },
    )
    weeks = warehouse.read_frame(
        "SELECT CAST(period_start AS VARCHAR) AS week, CAST(as_of AS VARCHAR) AS as_of, "
        "channel, open_tickets FROM agg_weekly_backlog ORDER BY 1, 3"
    )
    assert weeks.values.tolist() == [
        ["2026-03-02", "2026-03-04", "chat", 2],
        ["2026-03-02", "2026-03-04", "email", 7],
        ["2026-03-09", "2026-03-09", "email", 5],
    ]
