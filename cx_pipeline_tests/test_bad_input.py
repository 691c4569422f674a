"""Bad input, one case each, with the exact outcome: quarantined, warned about, or a
clear failure naming the file, row and field. Nothing is dropped silently."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cx_pipeline.cli import QUIET_RUN_CONFIG, RANGE_END_TAG, RANGE_START_TAG
from cx_pipeline.definitions import RUNNABLE
from cx_pipeline.defs.resources import StagingPolicy
from cx_pipeline.lib.ingest.drops import DropError, read_drop
from cx_pipeline.lib.ingest.landing import scan_landing
from cx_pipeline.lib.ingest.sources import CUSTOMERS, SURVEY_RESPONSES, TICKET_EVENTS, TICKETS
from cx_pipeline.lib.ingest.staging import stage_drop
from cx_pipeline_tests.conftest import make_resources
from cx_pipeline_tests.helpers import warehouse_table

HEADER = "ticket_id,customer_id,created_at,channel,topic,priority,agent_group\n"
GOOD = "T1,C1,2026-03-04T09:00:00Z,email,billing,high,g\n"


def stage(tmp_path: Path, text: str, source=TICKETS, encoding: str = "utf-8", **options):
    path = tmp_path / "2026-03-04.csv"
    path.write_bytes(text.encode(encoding))
    return stage_drop(read_drop(path, **options).to_pandas(), source, str(path))


# --- one file at a time ------------------------------------------------------


def test_short_and_long_csv_rows_are_quarantined_with_their_row_numbers(tmp_path: Path) -> None:
    staged = stage(
        tmp_path, HEADER + GOOD + "T2,C1,2026\n" + "T3,C1,x,y,z,a,b,c\n" + GOOD.replace("T1", "T4")
    )
    assert staged.rows["ticket_id"].tolist() == ["T1", "T4"]
    rejects = staged.rejects.set_index("row_number")
    assert list(rejects.index) == [2, 3]
    assert rejects.loc[2, "rules"].startswith("malformed CSV row: expected 7 fields, got 3")
    assert rejects.loc[3, "rules"].startswith("malformed CSV row: expected 7 fields, got 8")
    assert json.loads(rejects.loc[2, "raw_row"]) == {"text": "T2,C1,2026"}


def test_an_unbalanced_quote_swallows_the_rest_of_the_file_into_one_rejected_row(
    tmp_path: Path,
) -> None:
    staged = stage(tmp_path, HEADER + GOOD + 'T2,C1,"2026-03-04,email\n' + GOOD.replace("T1", "T3"))
    # CSV cannot tell where the quote should have closed: the rest is one bad record.
    assert staged.rows["ticket_id"].tolist() == ["T1"]
    assert len(staged.rejects) == 1
    assert "T3" in json.loads(staged.rejects.iloc[0]["raw_row"])["text"]
    # The bad row holds T3's line too: 2 of 3 rows lost, far above the default 5 %.
    assert staged.lines_swallowed == 1
    assert staged.reject_share == pytest.approx(2 / 3)
    assert "runs over 1 more line(s)" in staged.rejects.iloc[0]["rules"]


def test_rows_swallowed_by_a_stray_quote_count_against_the_threshold(tmp_path: Path) -> None:
    good = [GOOD.replace("T1", f"T{n}") for n in range(1, 31)]
    after = [GOOD.replace("T1", f"U{n}") for n in range(1, 6)]
    staged = stage(tmp_path, HEADER + "".join(good) + 'X,C1,"2026-03-04,email\n' + "".join(after))
    # 30 good rows, one bad record holding its own line and the 5 after it: 6 of 36 lost
    # (16.7 %), not 1 of 31 (3.2 %, which passed the 5 % threshold before).
    assert len(staged.rows) == 30 and len(staged.rejects) == 1
    assert staged.lines_swallowed == 5
    assert staged.reject_share == pytest.approx(6 / 36)


def test_wrong_types_and_negative_durations_are_rejected(tmp_path: Path) -> None:
    staged = stage(
        tmp_path,
        "ticket_id,event_at,event_type,actor,handle_seconds\n"
        "T1,2026-03-04T09:00:00Z,agent_reply,a1,abc\n"
        "T1,2026-03-04T09:05:00Z,agent_reply,a1,-5\n"
        "T1,2026-03-04T09:10:00Z,teleported,a1,\n"
        "T1,2026-03-04T09:15:00Z,solved,a1,30\n",
        source=TICKET_EVENTS,
    )
    assert staged.rows["event_type"].tolist() == ["solved"]
    rules = staged.rejects.set_index("row_number")["rules"]
    assert rules[1] == "not a number"
    assert rules[2] == "greater_than_or_equal_to(0)"
    assert rules[3].startswith("not one of agent_reply, customer_reply")


def test_unknown_survey_type_and_out_of_scale_scores_are_rejected(tmp_path: Path) -> None:
    staged = stage(
        tmp_path,
        "response_id,customer_id,survey_type,score,submitted_at,scale_max,scale_direction\n"
        "R1,C1,Loyalty,9,2026-03-04T09:00:00Z,,\n"
        "R2,C1,nps,11,2026-03-04T09:00:00Z,,\n"
        "R3,C1,csat,0,2026-03-04T09:00:00Z,,\n"
        "R4,C1,ces,6,2026-03-04T09:00:00Z,6,lower_is_better\n"
        "R5,C1,ces,9,2026-03-04T09:00:00Z,10,higher_is_better\n",
        source=SURVEY_RESPONSES,
    )
    assert staged.rows["response_id"].tolist() == ["R5"]
    rules = staged.rejects.set_index("row_number")["rules"]
    assert rules[1].startswith("not one of nps, csat, ces")  # (scale_max then has no default)
    assert rules[2].startswith("score outside the response's scale")
    assert rules[3].startswith("score outside the response's scale")
    assert rules[4].startswith("scale_max not the survey type's scale")


def test_a_ces_answer_must_say_its_direction(tmp_path: Path) -> None:
    # "How much effort" (lower is better) and "made it easy" (higher) read a 2 oppositely:
    # a CES answer without its direction is quarantined, never guessed; NPS and CSAT
    # are always higher-is-better.
    staged = stage(
        tmp_path,
        "response_id,customer_id,survey_type,score,submitted_at,scale_direction\n"
        "R1,C1,ces,2,2026-03-04T09:00:00Z,\n"
        "R2,C1,ces,2,2026-03-04T09:00:00Z,Lower_is_better\n"
        "R3,C1,nps,9,2026-03-04T09:00:00Z,\n"
        "R4,C1,ces,2,2026-03-04T09:00:00Z,less\n",
        source=SURVEY_RESPONSES,
    )
    rows = staged.rows.set_index("response_id")["scale_direction"]
    assert rows.to_dict() == {"R2": "lower_is_better", "R3": "higher_is_better"}
    rules = staged.rejects.set_index("row_number")["rules"]
    assert rules[1].startswith("scale_direction required for a CES answer")
    assert rules[4].startswith("not one of higher_is_better, lower_is_better")


def test_timestamps_without_a_zone_are_read_in_the_configured_zone(tmp_path: Path) -> None:
    text = (
        HEADER
        + "T1,C1,2026-03-04 09:00:00,email,b,high,g\nT2,C1,2026-03-29T02:30:00,email,b,high,g\n"
    )
    path = tmp_path / "2026-03-04.csv"
    path.write_text(text, encoding="utf-8")
    raw = read_drop(path).to_pandas()
    berlin = stage_drop(raw, TICKETS, str(path), naive_timezone="Europe/Berlin")
    # 09:00 in Berlin (UTC+1 in March) is 08:00 UTC; 02:30 on 03-29 does not exist there.
    assert berlin.rows["created_at"].tolist() == [pd.Timestamp("2026-03-04T08:00:00Z")]
    assert berlin.rejects.iloc[0]["rules"] == "unparseable timestamp"
    utc = stage_drop(raw, TICKETS, str(path))
    assert utc.rows["created_at"].tolist() == [
        pd.Timestamp("2026-03-04T09:00:00Z"),
        pd.Timestamp("2026-03-29T02:30:00Z"),
    ]


def test_extra_columns_are_ignored_and_listed(tmp_path: Path) -> None:
    staged = stage(
        tmp_path, HEADER.strip() + ",requester_email,notes\n" + GOOD.strip() + ",a@b.c,x\n"
    )
    assert staged.extra_columns == ["requester_email", "notes"]
    assert list(staged.rows.columns) == list(TICKETS.columns)


def test_non_utf8_file_is_a_clear_error_unless_its_encoding_is_set(tmp_path: Path) -> None:
    text = HEADER + "T1,C1,2026-03-04T09:00:00Z,email,cobrança,high,g\n"
    with pytest.raises(DropError, match=r"2026-03-04\.csv as utf-8.*CX_DROP_ENCODING"):
        stage(tmp_path, text, encoding="latin-1")
    path = tmp_path / "2026-03-04.csv"
    staged = stage_drop(read_drop(path, "latin-1").to_pandas(), TICKETS, str(path))
    assert staged.rows["topic"].tolist() == ["cobrança"]


def test_a_very_long_comment_is_kept_whole(tmp_path: Path) -> None:
    comment = "très long, очень длинный, 很长. " * 4000  # ~130k characters
    staged = stage(
        tmp_path,
        "response_id,customer_id,survey_type,score,submitted_at,comment\n"
        f'R1,C1,csat,4,2026-03-04T09:00:00Z,"{comment}"\n',
        source=SURVEY_RESPONSES,
    )
    assert staged.rows.loc[0, "comment"] == comment.strip()


def test_drops_outside_the_partition_range_are_reported(tmp_path: Path) -> None:
    for name in ("2025-12-31.csv", "2026-01-02.csv", "tickets-final.csv", "2026-13-01.csv"):
        (tmp_path / "tickets").mkdir(exist_ok=True)
        (tmp_path / "tickets" / name).write_text(HEADER, encoding="utf-8")
    scan = scan_landing(tmp_path, ["tickets"], dt.date(2026, 1, 1), dt.date(2026, 1, 5))
    assert list(scan.signatures) == ["tickets/2026-01-02.csv"]
    assert scan.unrecognised == [
        "tickets/2025-12-31.csv",
        "tickets/2026-13-01.csv",
        "tickets/tickets-final.csv",
    ]


# --- whole runs --------------------------------------------------------------


def run(resources: dict[str, object], start: str, end: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        RUNNABLE,
        resources=resources,
        tags={RANGE_START_TAG: start, RANGE_END_TAG: end},
        run_config=QUIET_RUN_CONFIG,
        raise_on_error=False,
    )


def failure_messages(result: dg.ExecuteInProcessResult) -> str:
    return "\n".join(
        str(event.step_failure_data.error)
        for event in result.all_events
        if event.is_step_failure and event.step_failure_data.error
    )


def test_too_many_rejects_fail_the_run_naming_file_rule_and_example(
    tmp_path: Path, small_world: Path
) -> None:
    result = run(
        make_resources(small_world, tmp_path, reject_threshold=0.05), "2026-01-01", "2026-01-01"
    )
    assert not result.success
    # The day's reject check fails with its figures (the asset does not error), and the run
    # stops before anything downstream of the staged answers. (The tickets' check fails
    # too, on their own bad rows: the answers' is the one looked at here.)
    check = next(
        event.event_specific_data
        for event in result.all_events
        if event.event_type_value == "ASSET_CHECK_EVALUATION"
        and event.event_specific_data.check_name == "reject_share_within_threshold"
        and event.event_specific_data.asset_key.path == ["stg_survey_responses"]
        and not event.event_specific_data.passed
    )
    assert check.partition == "2026-01-01"
    figures = {key: value.value for key, value in check.metadata.items()}
    assert (figures["rows_read"], figures["rejected_rows"], figures["threshold"]) == (3, 1, 0.05)
    message = check.description
    assert "survey_responses/2026-01-01.csv: 1 of 3 rows rejected (33.3%, threshold 5.0%" in message
    assert "commonest rule: score outside the response's scale" in message
    assert "row 2: score" in message
    assert "reject_share_within_threshold" in failure_messages(result)
    assert not result.asset_materializations_for_node("mart_surveys")
    resources = make_resources(small_world, tmp_path)
    # The rejects are kept; the day's staged survey rows were not written.
    rejects = warehouse_table(resources, "stg_rejects")
    assert "survey_responses" in set(rejects["source"])
    assert not (tmp_path / "output" / "stg_survey_responses" / "date=2026-01-01").exists()


def test_a_missing_drop_fails_the_day_and_says_which(tmp_path: Path, small_world: Path) -> None:
    (small_world / "tickets" / "2026-01-02.csv").unlink()
    result = run(make_resources(small_world, tmp_path), "2026-01-02", "2026-01-02")
    assert not result.success
    assert "missing drop: no tickets file for 2026-01-02" in failure_messages(result)


def test_a_skipped_missing_drop_is_a_missing_day_not_a_day_of_zero(
    tmp_path: Path, small_world: Path
) -> None:
    (small_world / "tickets" / "2026-01-02.csv").unlink()
    resources = make_resources(small_world, tmp_path, missing_drops="skip")
    result = run(resources, "2026-01-01", "2026-01-03")
    assert result.success
    topic_days = set(warehouse_table(resources, "agg_daily_tickets_by_topic")["date"].astype(str))
    assert topic_days == {"2026-01-01", "2026-01-03"}  # no 01-02 rows at all
    churn_days = set(warehouse_table(resources, "agg_daily_churn")["date"].astype(str))
    assert "2026-01-02" in churn_days  # its customers drop did land
    # The day's own materialization says why it has no rows.
    not_computed = {
        m.partition: m.metadata["not_computed"].value
        for m in result.asset_materializations_for_node("mart_tickets_by_topic")
        if "not_computed" in m.metadata
    }
    assert not_computed == {"2026-01-02": "missing input(s) ['stg_tickets']"}


def test_an_empty_file_fails_naming_it(tmp_path: Path, small_world: Path) -> None:
    (small_world / "tickets" / "2026-01-01.csv").write_text("", encoding="utf-8")
    result = run(make_resources(small_world, tmp_path), "2026-01-01", "2026-01-01")
    assert not result.success
    assert "tickets/2026-01-01.csv is empty" in failure_messages(result)


def test_unknown_tickets_and_customers_and_events_before_creation_are_flagged(
    tmp_path: Path, small_world: Path
) -> None:
    tickets = small_world / "tickets" / "2026-01-02.csv"
    # C4 signed up in the same day's customer drop: known. C404 never was.
    tickets.write_text(
        tickets.read_text(encoding="utf-8") + "T8,C404,2026-01-02T07:00:00Z,email,billing,low,\n",
        encoding="utf-8",
    )
    events = small_world / "ticket_events" / "2026-01-02.csv"
    events.write_text(
        events.read_text(encoding="utf-8")
        + "T404,2026-01-02T10:00:00Z,agent_reply,agent-09,\n"
        + "T4,2026-01-02T08:00:00Z,solved,agent-01,\n",  # T4 was created at 08:30
        encoding="utf-8",
    )
    resources = make_resources(small_world, tmp_path)
    result = run(resources, "2026-01-01", "2026-01-02")
    assert result.success
    checks = {
        evaluation.check_name: evaluation for evaluation in result.get_asset_check_evaluations()
    }
    unknown = checks["events_reference_known_tickets"]
    assert not unknown.passed and unknown.severity == dg.AssetCheckSeverity.WARN
    assert unknown.metadata["unknown_references"].value == 1
    customers = checks["tickets_reference_known_customers"]
    assert not customers.passed and customers.metadata["unknown_references"].value == 1
    assert customers.metadata["examples"].value == ["C404"]
    early = checks["events_not_before_ticket_creation"]
    assert not early.passed and early.metadata["events_before_creation"].value == 1
    # The early solve is not a resolution: 01-02 still has no resolved ticket.
    resolution = warehouse_table(resources, "agg_daily_resolution_time")
    day2 = resolution[resolution["date"].astype(str) == "2026-01-02"]
    assert day2["tickets_resolved"].sum() == 0

    # The two event checks share one step; either can still be run alone.
    alone = dg.AssetCheckKey(dg.AssetKey("stg_ticket_events"), "events_not_before_ticket_creation")
    rerun = dg.materialize(
        RUNNABLE,
        selection=dg.AssetSelection.checks(alone),
        resources=resources,
        tags={RANGE_START_TAG: "2026-01-02", RANGE_END_TAG: "2026-01-02"},
        run_config=QUIET_RUN_CONFIG,
    )
    [only] = rerun.get_asset_check_evaluations()
    assert only.asset_check_key == alone and only.metadata["events_before_creation"].value == 1


def test_implausible_times_are_quarantined_naming_file_row_and_field(tmp_path: Path) -> None:
    path = tmp_path / "2026-03-04.csv"
    path.write_text(
        HEADER
        + GOOD
        + "T2,C1,2200-01-01T09:00:00Z,email,billing,high,g\n"
        + "T3,C1,1900-01-01T09:00:00Z,email,billing,high,g\n"
        + "T4,C1,2026-03-06T23:00:00Z,email,billing,high,g\n"  # within 2 days ahead
        + "T5,C1,2026-03-07T00:00:00Z,email,billing,high,g\n",
        encoding="utf-8",
    )
    window = StagingPolicy().plausible_times(dt.date(2026, 3, 4))  # 1970-01-01 .. 03-07
    staged = stage_drop(read_drop(path).to_pandas(), TICKETS, str(path), plausible=window)
    assert staged.rows["ticket_id"].tolist() == ["T1", "T4"]
    rejects = staged.rejects.set_index("row_number")
    assert list(rejects.index) == [2, 3, 5]
    assert set(rejects["columns"]) == {"created_at"}
    assert set(rejects["rules"]) == {"implausible time (outside 1970-01-01 .. 2026-03-07)"}
    assert set(rejects["file"]) == {str(path)}
    assert "2200-01-01" in rejects.loc[2, "message"]
    # A customer's churn date may lie ahead (a contract's end); its signup may not.
    people = tmp_path / "2026-03-05.csv"
    people.write_text(
        "customer_id,signed_up_at,churned_at\n"
        "C1,2026-03-01T00:00:00Z,2026-09-01T00:00:00Z\n"
        "C2,2026-09-01T00:00:00Z,\n",
        encoding="utf-8",
    )
    customers = stage_drop(read_drop(people).to_pandas(), CUSTOMERS, str(people), plausible=window)
    assert customers.rows["customer_id"].tolist() == ["C1"]


def test_infinite_or_huge_handle_times_and_fractional_nps_are_rejected(tmp_path: Path) -> None:
    staged = stage(
        tmp_path,
        "ticket_id,event_at,event_type,actor,handle_seconds\n"
        "T1,2026-03-04T09:00:00Z,agent_reply,a1,inf\n"
        "T1,2026-03-04T09:05:00Z,agent_reply,a1,1e308\n"
        "T1,2026-03-04T09:10:00Z,agent_reply,a1,86400\n",  # a whole day: the most allowed
        source=TICKET_EVENTS,
    )
    assert staged.rows["handle_seconds"].tolist() == [86400.0]
    rules = staged.rejects.set_index("row_number")["rules"]
    assert rules[1] == "not a finite number"
    assert rules[2] == "less_than_or_equal_to(86400.0)"
    answers = stage(
        tmp_path,
        "response_id,customer_id,ticket_id,survey_type,score,submitted_at,channel,comment\n"
        "R1,C1,,nps,8.5,2026-03-04T09:00:00Z,email,\n"
        "R2,C1,,nps,8,2026-03-04T09:00:00Z,email,\n"
        "R3,C1,,csat,4.5,2026-03-04T09:00:00Z,email,\n",
        source=SURVEY_RESPONSES,
    )
    assert answers.rows["response_id"].tolist() == ["R2"]
    reasons = set(answers.rejects["rules"])
    assert reasons == {"score not a whole number (nps and csat answers are whole points)"}


def test_a_broken_json_line_is_quarantined_with_its_line_number(tmp_path: Path) -> None:
    path = tmp_path / "2026-03-04.jsonl"
    answer = '{{"response_id": "{}", "customer_id": "C1", "survey_type": "nps", "score": 9, '
    answer += '"submitted_at": "2026-03-04T09:00:00Z"}}'
    path.write_text(
        answer.format("R1") + "\n" + '{"response_id": "R2", "score": 9' + "\n"
        + answer.format("R3") + "\n",
        encoding="utf-8",
    )  # fmt: skip
    staged = stage_drop(read_drop(path).to_pandas(), SURVEY_RESPONSES, str(path))
    assert staged.rows["response_id"].tolist() == ["R1", "R3"]
    (reject,) = staged.rejects.itertuples()
    assert reject.row_number == 2
    assert reject.rules.startswith("malformed JSON line")
    assert json.loads(reject.raw_row)["text"] == '{"response_id": "R2", "score": 9'


def test_duplicate_headers_and_list_columns_are_clear_errors(tmp_path: Path) -> None:
    doubled = tmp_path / "2026-03-04.csv"
    doubled.write_text("ticket_id,ticket_id,created_at\nT1,T2,2026-03-04T09:00:00Z\n")
    with pytest.raises(DropError, match="ticket_id appear more than once"):
        read_drop(doubled)
    nested = tmp_path / "2026-03-05.parquet"
    pq.write_table(pa.table({"ticket_id": ["T1"], "tags": [["a", "b"]]}), nested)
    with pytest.raises(DropError, match=r"2026-03-05.parquet: column\(s\) tags hold lists"):
        read_drop(nested)


def test_float_ids_in_parquet_are_read_as_whole_numbers_or_refused(tmp_path: Path) -> None:
    # pandas writes an integer id column with a gap as floats: 90.0 is the id "90", as the
    # other drops spell it. Past 2**53 a float cannot hold every whole number (2**53 + 1
    # is stored as 2**53), so such an id may name another ticket: the drop is refused.
    whole = tmp_path / "2026-03-04.parquet"
    pq.write_table(pa.table({"ticket_id": [90.0, None, 2.0**53], "score": [8.5, 9.0, None]}), whole)
    read = read_drop(whole).to_pandas()
    assert read["ticket_id"].tolist()[::2] == ["90", "9007199254740992"]
    assert read["score"].tolist()[:2] == ["8.5", "9"]  # a measure keeps its fraction
    inexact = tmp_path / "2026-03-05.parquet"
    pq.write_table(pa.table({"customer_id": [7.0, 7.5, 2.0**60]}), inexact)
    with pytest.raises(DropError, match=r"2026-03-05.parquet row 2, column customer_id: id 7.5 "):
        read_drop(inexact)


def test_json_values_stay_json_and_nul_characters_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "2026-03-04.jsonl"
    answer = {
        "response_id": "R1",
        "customer_id": "C1",
        "survey_type": "nps",
        "score": 9,
        "submitted_at": "2026-03-04T09:00:00Z",
        "comment": {"text": "ok", "stars": [5]},
    }
    nul = {**answer, "response_id": "R2", "comment": "bad\u0000byte"}
    path.write_text(json.dumps(answer) + "\n" + json.dumps(nul) + "\n", encoding="utf-8")
    staged = stage_drop(read_drop(path).to_pandas(), SURVEY_RESPONSES, str(path))
    assert staged.rows["comment"].tolist() == ['{"text": "ok", "stars": [5]}']
    assert staged.rejects.set_index("row_number").loc[2, "rules"] == "NUL character in text"
