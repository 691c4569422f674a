"""Real Dagster runs over the small world (see small_world.py), figures worked out by hand."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from cx_pipeline.definitions import defs
from cx_pipeline.defs.marts import MARTS as MART_DEFINITIONS
from cx_pipeline.defs.schedules import cx_daily_schedule, previous_day
from cx_pipeline.defs.state import STATE_ASSETS
from cx_pipeline_tests.conftest import make_resources
from cx_pipeline_tests.helpers import (
    MARTS,
    OUTPUT_TABLES,
    RAW_AND_STAGING,
    parquet_table,
    run_day,
    run_range,
    sorted_rows,
    warehouse_table,
)


def test_definitions_load() -> None:
    graph = defs.resolve_asset_graph()
    names = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert {"raw_tickets", "stg_tickets", "agg_daily_churn", "agg_retention_cohorts"} <= names
    assert defs.resolve_job_def("cx_daily") is not None
    assert defs.resolve_schedule_def("cx_daily_schedule") is not None


def mart(resources: dict[str, object], table: str, day: str) -> pd.DataFrame:
    rows = warehouse_table(resources, table)
    return rows[rows["date"].astype("str") == day].drop(columns=["date"])


def test_range_run_gives_the_hand_worked_figures(resources: dict[str, object]) -> None:
    run_range(resources, "2026-01-01", "2026-01-03")

    resolution = {
        day: mart(resources, "agg_daily_resolution_time", day).set_index(["channel", "priority"])
        for day in ("2026-01-01", "2026-01-02", "2026-01-03")
    }
    # 01-01: T1 answered after 30 min; T2 (created 11:00+01:00 = 10:00Z) after 10, solved after 70.
    assert resolution["2026-01-01"].loc[("email", "high"), "first_response_minutes_mean"] == 30
    assert resolution["2026-01-01"].loc[("chat", "normal"), "resolution_minutes_mean"] == 70
    # 01-02: first replies T3 (120 min, across midnight) and T4 (15); T2's second solve not counted.
    day2 = resolution["2026-01-02"]
    assert list(day2.index) == [("email", "high")]
    assert day2.loc[("email", "high"), "tickets_first_responded"] == 2
    assert day2.loc[("email", "high"), "first_response_minutes_sum"] == 135
    assert day2.loc[("email", "high"), "first_response_minutes_p90"] == pytest.approx(109.5)
    assert day2.loc[("email", "high"), "tickets_resolved"] == 0
    # 01-03: T1 solved 2 days after creation (2880), T3 after 36 h (2160), T4 closed after 24 h.
    day3 = resolution["2026-01-03"].loc[("email", "high")]
    assert day3["tickets_resolved"] == 3
    assert day3["resolution_minutes_sum"] == 6480
    assert day3["resolution_minutes_median"] == 2160
    assert day3["resolution_minutes_p90"] == pytest.approx(2736)
    assert resolution["2026-01-03"].loc[("phone", "normal"), "first_response_minutes_mean"] == 6

    topics = mart(resources, "agg_daily_tickets_by_topic", "2026-01-02").set_index("topic")
    # 01-02: one 退款 ticket; 01-01 (the only earlier day in range) had billing 2, доставка 1.
    assert topics["tickets_created"].to_dict() == {"billing": 0, "доставка": 0, "退款": 1}
    assert topics.loc["billing", "prev_7d_mean"] == 2
    assert topics.loc["billing", "change_rate_vs_prev_7d"] == -1
    assert topics.loc["退款", "share_of_day"] == 1

    churn = mart(resources, "agg_daily_churn", "2026-01-02").iloc[0]
    # Start of 01-02: C1, C2 (C3 churned in December). C4 new; C2 churned (a later drop says so).
    assert churn[["customers_at_start", "customers_new", "customers_churned"]].tolist() == [2, 1, 1]
    assert churn["customers_at_end"] == 2
    assert churn["churn_rate"] == 0.5
    # 30 days from 12-04: only C1 active then; C2, C3, C4 new; C3 and C2 churned.
    assert churn[
        ["customers_at_start_30d", "customers_new_30d", "customers_churned_30d"]
    ].tolist() == [1, 3, 2]
    day3_churn = mart(resources, "agg_daily_churn", "2026-01-03").iloc[0]
    # C5 signs up and churns on 01-03: new and churned.
    assert day3_churn[
        ["customers_at_start", "customers_new", "customers_churned", "customers_at_end"]
    ].tolist() == [2, 1, 1, 2]

    cohorts = mart(resources, "agg_retention_cohorts", "2026-01-03")
    cells = {
        (str(r.cohort_month)[:10], r.months_since_signup): (r.cohort_customers, r.customers_active)
        for r in cohorts.itertuples()
    }
    assert cells == {
        ("2025-11-01", 0): (1, 1),
        ("2025-11-01", 1): (1, 1),
        ("2025-11-01", 2): (1, 1),
        ("2025-12-01", 0): (2, 1),  # C3 churned 12-31
        ("2025-12-01", 1): (2, 0),  # C2 churned 01-02
        ("2026-01-01", 0): (2, 1),  # C5 churned 01-03
    }


def materializations(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, dict]:
    """Each day's materialization metadata, by day."""
    return {
        m.partition: {key: value.value for key, value in m.metadata.items()}
        for m in (e.event_specific_data.materialization for e in result.all_events
                  if e.event_type_value == "ASSET_MATERIALIZATION" and e.asset_key.path == [asset])
    }  # fmt: skip


def check_results(result: dg.ExecuteInProcessResult, asset: str, check: str) -> dict[str, dict]:
    return {
        e.partition: {"passed": e.passed, **{k: v.value for k, v in e.metadata.items()}}
        for e in (event.event_specific_data for event in result.all_events
                  if event.event_type_value == "ASSET_CHECK_EVALUATION")
        if e.asset_key.path == [asset] and e.check_name == check
    }  # fmt: skip


def test_a_range_run_reports_each_day_on_its_own_day(resources: dict[str, object]) -> None:
    result = run_range(resources, "2026-01-01", "2026-01-03")
    # raw_tickets: 4 file rows on 01-01 (T9's channel "fax" is then rejected), 1 and 1 after.
    raw = materializations(result, "raw_tickets")
    assert {day: m["dagster/row_count"] for day, m in raw.items()} == {
        "2026-01-01": 4, "2026-01-02": 1, "2026-01-03": 1,
    }  # fmt: skip
    staged = materializations(result, "stg_tickets")
    assert {day: m["dagster/row_count"] for day, m in staged.items()} == {
        "2026-01-01": 3, "2026-01-02": 1, "2026-01-03": 1,
    }  # fmt: skip
    assert staged["2026-01-01"]["rejected_rows"] == 1
    assert "T1" in staged["2026-01-01"]["preview"] and "T4" in staged["2026-01-02"]["preview"]
    # Headline figures, as numbers the UI plots: churn 1 of 2 on 01-02 (see above).
    churn = materializations(result, "agg_daily_churn")
    assert (churn["2026-01-02"]["churn_rate"], churn["2026-01-02"]["customers_at_end"]) == (0.5, 2)
    # 01-03: T1, T3 and T4 first resolved, all email/high: 3 resolved.
    resolution = materializations(result, "agg_daily_resolution_time")
    assert resolution["2026-01-03"]["tickets_resolved"] == 4 - 1
    # Checks are tied to the day they judged: 1 of 4 rows rejected on 01-01, none after.
    rejects = check_results(result, "stg_tickets", "reject_share_within_threshold")
    assert set(rejects) == {"2026-01-01", "2026-01-02", "2026-01-03"}
    assert rejects["2026-01-01"]["rejected_rows"] == 1 and rejects["2026-01-01"]["passed"]
    assert rejects["2026-01-01"]["reject_share"] == 0.25
    assert rejects["2026-01-02"]["rejected_rows"] == 0
    # stg_tickets' volume, day by day: 3, 1, 1 rows; no trailing mean on the first day.
    volume = check_results(result, "stg_tickets", "row_count_vs_trailing_mean")
    assert {day: r["rows"] for day, r in volume.items()} == {
        "2026-01-01": 3, "2026-01-02": 1, "2026-01-03": 1,
    }  # fmt: skip
    assert "trailing_mean" not in volume["2026-01-01"]
    assert volume["2026-01-03"]["trailing_mean"] == 2  # (3 + 1) / 2
    assert not check_results(result, "agg_daily_churn", "row_count_vs_trailing_mean")
    # The schema is judged once for the run (a breaking day fails the asset itself).
    schema = check_results(result, "agg_daily_churn", "schema_valid")
    assert schema == {None: {"passed": True, "days_validated": 3, "rows_validated": 3}}


def test_backlog_of_the_small_world(resources: dict[str, object]) -> None:
    run_range(resources, "2026-01-01", "2026-01-03")
    backlog = {
        day: mart(resources, "agg_daily_backlog", day).set_index(["channel", "priority"])
        for day in ("2026-01-01", "2026-01-02", "2026-01-03")
    }
    # End of 01-01: T1 (answered, 15 h old) open, T3 (created 23:30) new; T2 solved.
    day1 = backlog["2026-01-01"].loc[("email", "high")]
    assert (day1["open_tickets"], day1["open_over_12h"], day1["open_over_24h"]) == (2, 1, 0)
    assert (day1["status_new"], day1["status_open"]) == (1, 1)
    # End of 01-02: T1 (39 h), T3 (answered, 24.5 h), T4 (15.5 h); T2 reopened and solved again.
    day2 = backlog["2026-01-02"].loc[("email", "high")]
    assert (day2["open_tickets"], day2["open_over_12h"], day2["open_over_24h"]) == (3, 3, 2)
    assert day2["open_over_72h"] == 0 and day2["status_open"] == 3
    # End of 01-03: T1, T3 solved, T4 closed; only T5 (phone, 13 h) is open.
    assert list(backlog["2026-01-03"].index) == [("phone", "normal")]
    assert backlog["2026-01-03"].loc[("phone", "normal"), "open_over_12h"] == 1
    latest = warehouse_table(resources, "fct_tickets_latest").set_index("ticket_id")
    assert latest.loc["T2", "status"] == "solved" and latest.loc["T2", "reopens"] == 1


def test_survey_marts_of_the_small_world(resources: dict[str, object]) -> None:
    run_range(resources, "2026-01-01", "2026-01-03")

    def one(table: str, day: str, window: int, breakdown: str, value: str) -> pd.Series:
        rows = mart(resources, table, day)
        rows = rows[
            (rows["window_days"] == window)
            & (rows["breakdown"] == breakdown)
            & (rows["breakdown_value"] == value)
        ]
        assert len(rows) == 1
        return rows.iloc[0]

    # 01-01: one valid NPS answer (9; the 11 was rejected): NPS 100 from a single response.
    nps = one("agg_daily_nps", "2026-01-01", 1, "all", "(all)")
    assert (nps["responses"], nps["promoters"], nps["nps"]) == (1, 1, 100)
    assert nps["low_sample"]
    # R1: CSAT 5 about T2 (topic доставка, agent group tier1): CSS by topic.
    css = one("agg_daily_csat", "2026-01-01", 1, "topic", "доставка")
    assert (css["responses"], css["csat_rate"]) == (1, 1)
    # R4: CES 6 on the default 1-7 scale, on 01-02; still in 01-03's 7-day window.
    assert one("agg_daily_ces", "2026-01-02", 1, "all", "(all)")["score_mean"] == 6
    assert one("agg_daily_ces", "2026-01-03", 7, "segment", "mid-market")["responses"] == 1
    assert mart(resources, "agg_daily_ces", "2026-01-03").query("window_days == 1").empty


def test_staging_sets_aside_bad_rows_and_keeps_every_script(resources: dict[str, object]) -> None:
    run_range(resources, "2026-01-01", "2026-01-01", assets=RAW_AND_STAGING)
    rejects = warehouse_table(resources, "stg_rejects").set_index("source")
    assert sorted(rejects.index) == ["survey_responses", "tickets"]
    ticket_reject = rejects.loc["tickets"]
    assert ticket_reject["row_number"] == 4
    assert ticket_reject["columns"] == "channel"
    assert ticket_reject["file"].endswith("tickets/2026-01-01.csv")
    assert '"ticket_id":"T9"' in ticket_reject["raw_row"]
    assert "fax" in ticket_reject["message"]
    assert rejects.loc["survey_responses", "columns"] == "score"
    tickets = warehouse_table(resources, "stg_tickets").set_index("ticket_id")
    assert sorted(tickets.index) == ["T1", "T2", "T3"]
    assert tickets.loc["T2", "channel"] == "chat"
    assert tickets.loc["T2", "topic"] == "доставка"
    events = parquet_table(resources, "stg_ticket_events")
    assert len(events) == 3  # the duplicate T1 reply is removed
    comments = set(parquet_table(resources, "stg_survey_responses")["comment"])
    assert comments == {"Atendimento excelente, obrigado!", "Всё отлично"}


def test_parquet_and_warehouse_hold_the_same_rows(resources: dict[str, object]) -> None:
    run_range(resources, "2026-01-01", "2026-01-03")
    for table in OUTPUT_TABLES:
        from_parquet = sorted_rows(parquet_table(resources, table))
        from_warehouse = sorted_rows(warehouse_table(resources, table))
        assert len(from_parquet) == len(from_warehouse), table


def test_days_in_any_order_and_reruns_give_the_same_tables(
    resources: dict[str, object], tmp_path
) -> None:
    run_range(resources, "2026-01-01", "2026-01-03")
    in_order = {table: sorted_rows(warehouse_table(resources, table)) for table in OUTPUT_TABLES}

    landing = Path(resources["paths"].landing_dir)  # type: ignore[attr-defined]
    shuffled = make_resources(landing, tmp_path / "other")
    # Staging days newest first, one run each; then marts in a shuffled order. The
    # backlog and customer snapshots carry the day before (a declared self-dependency,
    # which Dagster honours in backfills), so they run in date order.
    for day in ("2026-01-03", "2026-01-01", "2026-01-02"):
        run_day(shuffled, day, assets=RAW_AND_STAGING)
    # The carried customer snapshot, which the marts read, in date order (Dagster orders it
    # by its declared dependency on its own day before).
    for day in ("2026-01-01", "2026-01-02", "2026-01-03"):
        run_day(shuffled, day, assets=STATE_ASSETS)
    # Marts that read no other mart's output run in any order; then those that carry a
    # snapshot, in date order; then those that read what those wrote (the surveys mart
    # looks up tickets in the tickets mart's carried state), in any order again.
    by_name = {f"mart_{mart.name}": mart for mart in MART_DEFINITIONS}
    mart_tables = {spec.name for mart in MART_DEFINITIONS for spec in mart.specs}
    carrying = [a for a in MARTS if by_name[a.node_def.name].carries]
    reading = [
        a for a in MARTS
        if a not in carrying and {i.table for i in by_name[a.node_def.name].inputs} & mart_tables
    ]  # fmt: skip
    stateless = [a for a in MARTS if a not in carrying + reading]
    for day in ("2026-01-02", "2026-01-03", "2026-01-01"):
        run_day(shuffled, day, assets=stateless)
    for day in ("2026-01-01", "2026-01-02", "2026-01-03"):
        run_day(shuffled, day, assets=carrying)
    for day in ("2026-01-03", "2026-01-01", "2026-01-02"):
        run_day(shuffled, day, assets=reading)
    # And a rerun of one day alone, twice.
    run_day(shuffled, "2026-01-02")
    run_day(shuffled, "2026-01-02")
    for table in OUTPUT_TABLES:
        pd.testing.assert_frame_equal(
            sorted_rows(warehouse_table(shuffled, table)), in_order[table], obj=table
        )


def test_schedule_runs_the_previous_reporting_day() -> None:
    fired_at = dt.datetime(2026, 3, 5, 6, 0, tzinfo=dt.UTC)
    assert previous_day(fired_at, "UTC") == dt.date(2026, 3, 4)
    # 06:00 UTC is still 03-04 in Los Angeles: the day before that is 03-03.
    assert previous_day(fired_at, "America/Los_Angeles") == dt.date(2026, 3, 3)
    import dagster as dg

    context = dg.build_schedule_context(scheduled_execution_time=fired_at)
    request = cx_daily_schedule(context)
    assert isinstance(request, dg.RunRequest)
    assert request.partition_key == "2026-03-04"
