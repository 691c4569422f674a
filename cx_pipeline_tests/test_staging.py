"""Reading drops and staging their rows: formats, rejects, duplicates, text in any script."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cx_pipeline.lib.ingest import drops
from cx_pipeline.lib.ingest.drops import DropError, find_drop, read_drop
from cx_pipeline.lib.ingest.sources import SURVEY_RESPONSES, TICKETS
from cx_pipeline.lib.ingest.staging import MissingColumnsError, stage_drop
from cx_pipeline.lib.metrics.sql import last_of_each
from cx_pipeline.lib.store.parquet import partition_path, read_window, write_partition

HEADER = "ticket_id,customer_id,created_at,channel,topic,priority,agent_group\n"


def stage_tickets(tmp_path: Path, body: str, name: str = "2026-03-04.csv"):
    path = tmp_path / name
    path.write_text(HEADER + body, encoding="utf-8")
    return stage_drop(read_drop(path).to_pandas(), TICKETS, str(path))


def test_the_same_rows_read_alike_from_csv_jsonl_and_parquet(tmp_path: Path) -> None:
    rows = [
        {"response_id": "R1", "customer_id": "C1", "survey_type": "nps", "score": 9,
         "submitted_at": "2026-03-04T10:00:00+02:00", "comment": "Всё отлично, 谢谢"},
        {"response_id": "R2", "customer_id": "C2", "survey_type": "csat", "score": 4,
         "submitted_at": "2026-03-04T09:00:00Z", "comment": None},
    ]  # fmt: skip
    frame = pd.DataFrame(rows)
    frame.to_csv(tmp_path / "a.csv", index=False)
    (tmp_path / "a.jsonl").write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8"
    )
    typed = frame.assign(submitted_at=pd.to_datetime(frame["submitted_at"], utc=True))
    pq.write_table(pa.Table.from_pandas(typed, preserve_index=False), tmp_path / "a.parquet")
    staged = {
        suffix: stage_drop(
            read_drop(tmp_path / f"a.{suffix}").to_pandas(), SURVEY_RESPONSES, suffix
        ).rows
        for suffix in ("csv", "jsonl", "parquet")
    }
    for suffix in ("jsonl", "parquet"):
        pd.testing.assert_frame_equal(staged[suffix], staged["csv"], obj=suffix)
    first = staged["csv"].iloc[0]
    assert first["submitted_at"] == pd.Timestamp("2026-03-04T08:00:00Z")
    assert first["score"] == 9.0
    assert first["comment"] == "Всё отлично, 谢谢"


def test_bad_rows_are_rejected_with_file_row_and_rule(tmp_path: Path) -> None:
    staged = stage_tickets(
        tmp_path,
        "T1,C1,2026-03-04T09:00:00Z,email,billing,high,g\n"
        "T2,C1,yesterday,email,billing,high,g\n"
        "T3,,2026-03-04T09:00:00Z,pigeon,billing,high,g\n",
    )
    assert staged.rows["ticket_id"].tolist() == ["T1"]
    rejects = staged.rejects.set_index("row_number")
    assert rejects.loc[2, "columns"] == "created_at"
    assert rejects.loc[2, "rules"] == "unparseable timestamp"
    assert rejects.loc[2, "message"].endswith(
        "row 2: created_at: unparseable timestamp (value yesterday)"
    )
    assert rejects.loc[3, "columns"] == "customer_id, channel"
    assert "not one of email, chat, phone, social, web" in rejects.loc[3, "rules"]
    assert json.loads(rejects.loc[3, "raw_row"])["channel"] == "pigeon"


def test_a_survey_sent_after_it_was_answered_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "2026-03-04.csv"
    path.write_text(
        "response_id,customer_id,survey_type,score,submitted_at,sent_at\n"
        "R1,C1,csat,5,2026-03-04T10:00:00Z,2026-03-04T09:00:00Z\n"
        "R2,C1,csat,4,2026-03-04T10:00:00Z,2026-03-04T11:00:00Z\n"
        "R3,C2,csat,3,2026-03-04T10:00:00Z,\n",
        encoding="utf-8",
    )
    staged = stage_drop(read_drop(path).to_pandas(), SURVEY_RESPONSES, str(path))
    assert staged.rows["response_id"].tolist() == ["R1", "R3"]
    reject = staged.rejects.iloc[0]
    assert (reject["row_number"], reject["columns"]) == (2, "sent_at")
    assert reject["rules"] == "sent after it was answered"


def test_duplicates_in_a_drop_keep_the_last_version(tmp_path: Path) -> None:
    staged = stage_tickets(
        tmp_path,
        "T1,C1,2026-03-04T09:00:00Z,email,billing,low,g\n"
        "T1,C1,2026-03-04T09:00:00Z,email,billing,urgent,g\n",
    )
    assert staged.rows["priority"].tolist() == ["urgent"]
    assert staged.duplicates_removed == 1


@pytest.mark.parametrize("in_duckdb_from", [0, 1_000_000], ids=["duckdb", "pandas"])
def test_the_last_row_of_each_event_key_is_kept_in_the_drops_order(in_duckdb_from: int) -> None:
    # Events keyed by (ticket, instant, type, actor, sequence); an empty sequence matches an
    # empty one. Rows 0 and 2 are one event (2 kept), rows 3 and 4 too (4 kept, its
    # handle time); row 1 differs from 0 by its sequence, row 5 from 3 by its actor.
    at = pd.Timestamp("2026-03-04 09:00", tz="UTC")
    events = pd.DataFrame(
        {
            "ticket_id": ["T1", "T1", "T1", "T2", "T2", "T2"],
            "event_at": [at, at, at, at, at, at],
            "event_type": ["solved"] * 3 + ["agent_reply"] * 3,
            "actor": ["a1", "a1", "a1", "a2", "a2", "a3"],
            "sequence": [1.0, 2.0, 1.0, None, None, None],
            "handle_seconds": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        }
    ).astype({"ticket_id": "str", "event_type": "str", "actor": "str"})
    key = ["ticket_id", "event_at", "event_type", "actor", "sequence"]
    kept = last_of_each(events, key, in_duckdb_from)
    assert kept.index.tolist() == [1, 2, 4, 5]
    assert kept["handle_seconds"].tolist() == [2.0, 3.0, 5.0, 6.0]
    assert last_of_each(events.iloc[[1, 2, 5]], key, in_duckdb_from).index.tolist() == [1, 2, 5]


def test_missing_required_columns_name_the_file_and_columns(tmp_path: Path) -> None:
    path = tmp_path / "2026-03-04.csv"
    path.write_text("ticket_id,created_at\nT1,2026-03-04T09:00:00Z\n", encoding="utf-8")
    with pytest.raises(MissingColumnsError, match="customer_id, channel, priority") as error:
        stage_drop(read_drop(path).to_pandas(), TICKETS, str(path))
    assert str(path) in str(error.value)


def test_a_header_only_drop_stages_zero_rows(tmp_path: Path) -> None:
    staged = stage_tickets(tmp_path, "")
    assert staged.rows.empty and staged.rejects.empty


def test_json_values_read_as_the_text_they_were(tmp_path: Path) -> None:
    # A whole number read as a float is written whole (ids, scores), a huge one too; a
    # fraction, true/false and a record keep their JSON text; null stays empty.
    path = tmp_path / "2026-03-04.jsonl"
    path.write_text(
        '{"score": 3, "rate": 1.5, "big": 1e20, "flag": true, "meta": {"x": 1}, "id": "7"}\n'
        '{"score": null, "rate": 2.0, "big": 2, "flag": false, "meta": [1], "id": null}\n',
        encoding="utf-8",
    )
    rows = read_drop(path).to_pylist()
    picked = [{k: row[k] for k in ("score", "rate", "big", "flag", "meta", "id")} for row in rows]
    assert picked == [
        {"score": "3", "rate": "1.5", "big": "100000000000000000000", "flag": "True",
         "meta": '{"x": 1}', "id": "7"},
        {"score": None, "rate": "2", "big": "2", "flag": "False", "meta": "[1]", "id": None},
    ]  # fmt: skip


def test_json_lines_of_single_values_are_read_by_arrow_as_the_text_they_were(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrow's reader (the fast one) takes text that looks like an instant for a timestamp:
    # it must come out as written, also when first seen past the lines sampled for kinds
    # (the sample is cut to the first line here). Columns in order of first appearance.
    monkeypatch.setattr(drops, "_JSON_SAMPLE_BYTES", 20)
    path = tmp_path / "2026-03-04.jsonl"
    path.write_bytes(
        b'\xef\xbb\xbf{"id": "R1", "score": 9.0, "ok": true}\r\n'
        b'{"id": "R2", "score": 7.5, "at": "2026-03-04T09:00:00+02:00", "note": "caf\xc3\xa9"}\n'
        b'{"id": "R3", "score": null, "ok": false, "at": "2026-03-04T09:00:00.250Z"}\n'
    )
    assert drops._arrow_json_lines(path) is not None  # not the pandas fallback
    rows = read_drop(path)
    assert rows.column_names[:5] == ["id", "score", "ok", "at", "note"]
    picked = rows.select(["score", "ok", "at", "note"]).to_pylist()
    assert [list(row.values()) for row in picked] == [
        ["9", "True", None, None],
        ["7.5", None, "2026-03-04T09:00:00+02:00", "café"],
        [None, "False", "2026-03-04T09:00:00.250Z", None],
    ]
    assert rows["_row_number"].to_pylist() == [1, 2, 3]


def test_json_lines_arrow_cannot_read_alike_go_through_pandas(tmp_path: Path) -> None:
    # A column of mixed kinds, an integer past int64 and invalid UTF-8: the pandas reader
    # gives the text (or the clear error) it always gave.
    mixed = tmp_path / "2026-03-04.jsonl"
    mixed.write_text('{"id": "7"}\n{"id": 8}\n', encoding="utf-8")
    assert drops._arrow_json_lines(mixed) is None
    assert read_drop(mixed).to_pandas()["id"].tolist() == ["7", "8"]
    huge = tmp_path / "2026-03-05.jsonl"
    huge.write_text('{"id": 99999999999999999999}\n', encoding="utf-8")
    assert drops._arrow_json_lines(huge) is None  # Arrow would read 1e20, another id
    broken = tmp_path / "2026-03-06.jsonl"
    broken.write_bytes(b'{"id": "a\xff"}\n')
    with pytest.raises(DropError, match=r"2026-03-06\.jsonl as utf-8"):
        read_drop(broken)


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_an_empty_file_is_a_clear_error(tmp_path: Path, suffix: str) -> None:
    # 0 bytes is an interrupted export until shown otherwise: a CSV has no header, and a
    # JSON-lines file not even the line break a quiet day's export writes.
    path = tmp_path / f"2026-03-04.{suffix}"
    path.write_text("", encoding="utf-8")
    with pytest.raises(DropError, match=f"2026-03-04.{suffix} is empty"):
        read_drop(path)


def test_a_json_lines_drop_of_one_line_break_is_a_quiet_day(tmp_path: Path) -> None:
    path = tmp_path / "2026-03-04.jsonl"
    path.write_text("\n", encoding="utf-8")
    assert read_drop(path).num_rows == 0


def test_empty_topic_gets_a_label_and_categories_are_case_insensitive(tmp_path: Path) -> None:
    staged = stage_tickets(tmp_path, "T1,C1,2026-03-04T09:00:00Z, EMAIL ,,High,\n")
    row = staged.rows.iloc[0]
    assert (row["channel"], row["priority"], row["topic"]) == ("email", "high", "(no topic)")
    assert pd.isna(row["agent_group"])


def test_two_drops_for_one_day_are_refused(tmp_path: Path) -> None:
    (tmp_path / "tickets").mkdir()
    for suffix in ("csv", "jsonl"):
        (tmp_path / "tickets" / f"2026-03-04.{suffix}").write_text("", encoding="utf-8")
    with pytest.raises(DropError, match="more than one drop"):
        find_drop(tmp_path, "tickets", dt.date(2026, 3, 4))
    assert find_drop(tmp_path, "tickets", dt.date(2026, 3, 5)) is None


def test_partition_write_replaces_atomically_and_window_reads_filter(tmp_path: Path) -> None:
    schema = pa.schema([("n", pa.int64())])
    for offset in range(5):
        day = dt.date(2026, 3, 1) + dt.timedelta(days=offset)
        write_partition(tmp_path, "t", day, pa.table({"n": [offset, offset]}, schema=schema))
    write_partition(tmp_path, "t", dt.date(2026, 3, 2), pa.table({"n": [7]}, schema=schema))
    folder = partition_path(tmp_path, "t", dt.date(2026, 3, 2)).parent
    assert [p.name for p in folder.iterdir()] == ["part-0.parquet"]  # no temporary left
    window = read_window(tmp_path, "t", schema, dt.date(2026, 3, 2), dt.date(2026, 3, 3))
    assert window["n"].tolist() == [7, 2, 2]
    # The partition day stays Arrow-backed (no Python date per row), read or empty alike.
    assert window["date"].tolist() == [dt.date(2026, 3, 2), *[dt.date(2026, 3, 3)] * 2]
    none = read_window(tmp_path, "none", schema, dt.date(2026, 3, 2), dt.date(2026, 3, 3))
    assert none.empty
    assert window["date"].dtype == none["date"].dtype == pd.ArrowDtype(pa.date32())
    # Read again after a rerun rewrote a day: the new file, not the one read before.
    write_partition(tmp_path, "t", dt.date(2026, 3, 3), pa.table({"n": [8, 9, 10]}, schema=schema))
    window = read_window(tmp_path, "t", schema, dt.date(2026, 3, 2), dt.date(2026, 3, 3))
    assert window["n"].tolist() == [7, 8, 9, 10]
    # A file written before a column existed reads it as empty.
    wider = schema.append(pa.field("m", pa.string()))
    window = read_window(tmp_path, "t", wider, dt.date(2026, 3, 2), dt.date(2026, 3, 2))
    assert window["n"].tolist() == [7] and window["m"].isna().all()


def test_rejects_are_counted_per_source_and_rule() -> None:
    from cx_pipeline.lib.quality import rejects_by_rule

    rejects = pd.DataFrame(
        {
            "source": ["tickets", "tickets", "survey_responses"],
            "rules": ["not one of email, chat; required value missing", "required value missing",
                      "score outside the response's scale"],
        }
    )  # fmt: skip
    counts = rejects_by_rule(rejects)
    # The second ticket breaks two rules: it counts under each.
    assert counts.values.tolist() == [
        ["tickets", "required value missing", 2],
        ["survey_responses", "score outside the response's scale", 1],
        ["tickets", "not one of email, chat", 1],
    ]


def test_a_volume_check_counts_the_run_s_days_before_their_files(tmp_path: Path) -> None:
    from cx_pipeline.lib.quality import volume_check

    day = dt.date(2026, 1, 10)
    rows = pa.table({"ticket_id": pa.array([f"T{n}" for n in range(40)])})
    for back in (1, 2):  # files of the two days before: 40 rows each
        write_partition(tmp_path, "stg_tickets", day - dt.timedelta(days=back), rows)
    # The run computed the day before (20 rows, not written yet): its count wins over the file.
    check = volume_check(tmp_path, "stg_tickets", day, 130, {day - dt.timedelta(days=1): 20})
    assert check.trailing_mean == 30  # (20 + 40) / 2
    assert not check.ok  # 130 rows > 4 x 30
