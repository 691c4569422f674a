"""Source mappings: errors named before data is read, and conversion of a small export."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from cx_pipeline.lib.ingest.drops import read_drop
from cx_pipeline.lib.ingest.mappings import (
    MappingError,
    load_mapping,
    read_source,
    to_canonical,
    write_drops,
)
from cx_pipeline.lib.ingest.sources import SOURCES_BY_NAME
from cx_pipeline.lib.ingest.staging import stage_drop
from cx_pipeline.settings import PROJECT_ROOT

EXPORT = """Ticket ID,Requester,Created,Source,Priority,Type
101,alice,23/11/2026 09:30,Phone,Urgent,Billing
102,bob,23/11/2026 17:05,Email,Low,
"""
MAPPING = """
source: tickets
read: {path: export.csv, format: csv}
rename: {"Ticket ID": ticket_id, Requester: customer_id, Created: created_at,
         Source: channel, Priority: priority, Type: topic}
values:
  channel: {Phone: phone, Email: email}
  priority: {Urgent: urgent, Low: low}
timestamps:
  created_at: {format: "%d/%m/%Y %H:%M", timezone: Europe/Rome}
constants: {agent_group: tier1}
"""


def write(tmp_path: Path, mapping: str) -> Path:
    (tmp_path / "export.csv").write_text(EXPORT, encoding="utf-8")
    path = tmp_path / "tickets.yaml"
    path.write_text(mapping, encoding="utf-8")
    return path


def test_a_mapping_converts_an_export_to_canonical_rows(tmp_path: Path) -> None:
    mapping = load_mapping(write(tmp_path, MAPPING))
    tickets = to_canonical(mapping, read_source(mapping))["tickets"]
    first = tickets.iloc[0]
    assert (first["ticket_id"], first["customer_id"], first["channel"]) == ("101", "alice", "phone")
    assert first["priority"] == "urgent" and first["agent_group"] == "tier1"
    # 09:30 in Rome (UTC+1 in November) is 08:30 UTC.
    assert first["created_at"] == "2026-11-23T08:30:00+00:00"
    assert tickets["created_at"].iloc[1] == "2026-11-23T16:05:00+00:00"


def test_a_value_can_map_to_empty(tmp_path: Path) -> None:
    values = "priority: {Urgent: urgent, Low: low}"
    mapping = MAPPING.replace(values, values + '\n  topic: {Billing: ""}')
    loaded = load_mapping(write(tmp_path, mapping))
    tickets = to_canonical(loaded, read_source(loaded))["tickets"]
    # "Billing" maps to no topic (the empty value, not the text "None").
    assert tickets["topic"].isna().all()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("Requester: customer_id", "Requester: customer"), "rename.customer: not a column"),
        (
            ('"Ticket ID": ticket_id', '"Ticket": ticket_id'),
            "rename.Ticket: no column 'Ticket' in the source; its columns",
        ),
        (("Urgent: urgent", "Urgent: critical"), "values.priority.Urgent: 'critical' is not"),
        (("format: csv", "format: xls"), "read.format: 'xls' is not one of"),
        (("constants:", "constant:"), "constant: unknown key"),
    ],
)
def test_mapping_errors_name_the_file_and_key(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = write(tmp_path, MAPPING.replace(*change))
    with pytest.raises(MappingError, match=message) as error:
        load_mapping(path)
    assert str(path) in str(error.value)


LOG = """case,activity,at,who
K1,Open,2026-11-23 09:00:00+00:00,a
K1,Take,2026-11-23 09:10:00+00:00,a
K1,Resolve,2026-11-23 10:00:00+00:00,a
K1,Take,2026-11-23 11:00:00+00:00,b
K1,Wait,2026-11-23 11:30:00+00:00,b
K1,Take,2026-11-23 12:00:00+00:00,b
K1,Resolve,2026-11-23 13:00:00+00:00,b
K1,Take,2026-11-24 09:00:00+00:00,c
"""
EVENT_LOG_MAPPING = """
read: {path: log.csv, format: csv}
event_log:
  case_id: case
  activity: activity
  timestamp: at
  actor: who
  activities: {Take: agent_reply, Resolve: solved, Wait: pending}
  reopened_by: [Take]
  ticket_constants: {customer_id: c, channel: web, priority: normal}
"""


def test_an_event_log_reopens_once_per_resolution(tmp_path: Path) -> None:
    (tmp_path / "log.csv").write_text(LOG, encoding="utf-8")
    path = tmp_path / "log.yaml"
    path.write_text(EVENT_LOG_MAPPING, encoding="utf-8")
    mapping = load_mapping(path)
    frames = to_canonical(mapping, read_source(mapping))
    ticket = frames["tickets"].iloc[0]
    assert ticket["created_at"] == "2026-11-23T09:00:00+00:00"  # the case's first event
    events = frames["ticket_events"]
    # Taken again after each resolve: reopened at 11:00 and on the 24th, not at 12:00
    # (the ticket was already open again).
    reopened = events[events["event_type"] == "reopened"]["event_at"].tolist()
    assert reopened == ["2026-11-23T11:00:00+00:00", "2026-11-24T09:00:00+00:00"]
    assert (events["event_type"] == "agent_reply").sum() == 4


SQL_MAPPING = """
source: tickets
read:
  sql:
    url_env: CX_TEST_HELPDESK_REPLICA_URL
    query: >
      SELECT id, requester, opened, via FROM helpdesk.tickets
      WHERE opened >= :start AND opened < :end ORDER BY id
rename: {id: ticket_id, requester: customer_id, opened: created_at, via: channel}
values:
  channel: {Phone: phone, Mail: email}
constants: {priority: normal}
"""


def helpdesk_replica(url: str, rows: str) -> None:
    """A helpdesk's tickets table on the real server: (id, requester, opened, via) rows."""
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE SCHEMA helpdesk")
        connection.exec_driver_sql(
            "CREATE TABLE helpdesk.tickets (id text, requester text, opened timestamptz, via text)"
        )
        connection.exec_driver_sql(f"INSERT INTO helpdesk.tickets VALUES {rows}")
    engine.dispose()


def test_a_sql_source_is_pulled_day_by_day_from_a_real_postgresql(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    helpdesk_replica(
        postgres_url,
        "('T1', 'ann', '2026-11-22 22:30+00', 'Phone'),"  # 23:30 in Rome: the 22nd
        "('T2', 'bob', '2026-11-22 23:30+00', 'Mail'),"  # 00:30 in Rome: the 23rd
        "('T3', 'cy',  '2026-11-23 22:59+00', 'Phone'),"  # 23:59 in Rome: the 23rd
        "('T4', 'di',  '2026-11-24 12:00+00', 'Mail')",  # the 24th: outside the range
    )
    monkeypatch.setenv("CX_TEST_HELPDESK_REPLICA_URL", postgres_url)
    path = tmp_path / "replica.yaml"
    path.write_text(SQL_MAPPING, encoding="utf-8")
    mapping = load_mapping(path)
    landing = tmp_path / "landing"
    written = write_drops(
        [mapping], landing, "Europe/Rome", dt.date(2026, 11, 22), dt.date(2026, 11, 23)
    )
    assert written.drops == 2
    day_22 = pd.read_csv(landing / "tickets" / "2026-11-22.csv", dtype="str")
    day_23 = pd.read_csv(landing / "tickets" / "2026-11-23.csv", dtype="str")
    assert day_22["ticket_id"].tolist() == ["T1"]
    assert day_23["ticket_id"].tolist() == ["T2", "T3"]
    assert day_23["channel"].tolist() == ["email", "phone"]
    assert day_23["created_at"].tolist() == [
        "2026-11-22T23:30:00+00:00",
        "2026-11-23T22:59:00+00:00",
    ]
    assert set(day_23["priority"]) == {"normal"}


def test_a_sql_source_query_is_checked_before_any_row_is_read(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "replica.yaml"
    path.write_text(SQL_MAPPING, encoding="utf-8")
    with pytest.raises(MappingError, match="read.sql.url_env: environment variable"):
        load_mapping(path)
    monkeypatch.setenv("CX_TEST_HELPDESK_REPLICA_URL", postgres_url)
    with pytest.raises(MappingError, match='read.sql.query: .*"helpdesk.tickets" does not exist'):
        load_mapping(path)


def test_a_query_over_several_files_is_checked_against_their_headers(tmp_path: Path) -> None:
    (tmp_path / "export.csv").write_text(EXPORT, encoding="utf-8")
    (tmp_path / "people.csv").write_text("Requester,Plan\nalice,pro\nbob,free\n", encoding="utf-8")
    path = tmp_path / "joined.yaml"
    mapping = """
source: tickets
read:
  format: csv
  tables: {tickets: export.csv, people: people.csv}
  query: >
    SELECT t."Ticket ID" AS ticket_id, t.Requester AS customer_id, p.Plan AS topic
    FROM tickets t JOIN people p USING (Requester)
"""
    path.write_text(mapping, encoding="utf-8")
    rows = to_canonical(load_mapping(path), read_source(load_mapping(path)))["tickets"]
    assert rows.sort_values("ticket_id")["topic"].tolist() == ["pro", "free"]
    path.write_text(mapping.replace("p.Plan", "p.Tier"), encoding="utf-8")
    with pytest.raises(MappingError, match=r"joined.yaml: read.query: .*Tier"):
        load_mapping(path)


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "COPY (SELECT 1 AS x) TO '{out}'",
    ],
)
def test_a_query_sees_only_the_files_its_mapping_declares(tmp_path: Path, query: str) -> None:
    (tmp_path / "export.csv").write_text(EXPORT, encoding="utf-8")
    out = tmp_path / "written.csv"
    path = tmp_path / "sneaky.yaml"
    path.write_text(
        "source: tickets\nread:\n  format: csv\n  tables: {tickets: export.csv}\n"
        f'  query: "{query.format(out=out)}"\n',
        encoding="utf-8",
    )
    with pytest.raises(MappingError, match="sneaky.yaml: read.query: .*disabled") as error:
        load_mapping(path)
    assert "root:" not in str(error.value)  # nothing of the file is echoed
    assert not out.exists()


def test_a_file_in_another_format_is_named_but_not_shown(tmp_path: Path) -> None:
    # A mapping pointed at a file that is not a CSV export (here a passwd-like file): the
    # error names the mapping, the key and the problem, and shows nothing of the file.
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n")
    path = tmp_path / "wrong.yaml"
    path.write_text(MAPPING.replace("path: export.csv", f"path: {secret}"), encoding="utf-8")
    with pytest.raises(MappingError, match="does not split into columns") as error:
        load_mapping(path)
    assert str(path) in str(error.value)
    assert "/bin/bash" not in str(error.value) and "alice" not in str(error.value)


def staged(landing: Path, source: str) -> pd.DataFrame:
    """Every drop of a source staged as the pipeline stages it; no row may be rejected."""
    frames = []
    for path in sorted((landing / source).glob("*.csv")):
        drop = stage_drop(read_drop(path).to_pandas(), SOURCES_BY_NAME[source], str(path))
        assert drop.rejects.empty, drop.rejects["message"].tolist()
        frames.append(drop.rows)
    return pd.concat(frames, ignore_index=True)


def import_example(tmp_path: Path, *names: str) -> Path:
    landing = tmp_path / "landing"
    mappings = [load_mapping(PROJECT_ROOT / "examples" / name) for name in names]
    write_drops(mappings, landing, "UTC")  # one range of days for all
    return landing


def minutes(later: pd.Series, earlier: pd.Series) -> list[float]:
    return ((later - earlier).dt.total_seconds() / 60).tolist()


def test_shipped_zendesk_mappings_read_the_incremental_exports(tmp_path: Path) -> None:
    landing = import_example(tmp_path, "zendesk/tickets.yaml", "zendesk/ticket_events.yaml")
    tickets = staged(landing, "tickets")
    # Ticket 101 arrives twice (created, then updated on the 24th): the 24th's drop has the
    # newer version, urgent; 102 has no priority in Zendesk (normal) and came by voice.
    assert sorted((landing / "tickets").glob("*.csv"))[-1].name == "2026-11-24.csv"
    last = tickets.drop_duplicates("ticket_id", keep="last").set_index("ticket_id")
    assert last.loc["101", ["priority", "channel", "agent_group"]].tolist() == [
        "urgent", "email", "360001"
    ]  # fmt: skip
    assert last.loc["102", ["priority", "channel", "topic"]].tolist() == [
        "normal", "phone", "(no topic)"
    ]  # fmt: skip
    # Stable: same-instant events keep the order of the export (Zendesk's event ids).
    events = staged(landing, "ticket_events").sort_values(["ticket_id", "event_at"], kind="stable")
    assert events[events["ticket_id"] == "101"]["event_type"].tolist() == [
        "agent_reply", "pending", "open", "on_hold", "solved", "reopened", "solved"
    ]  # fmt: skip
    first = events.drop_duplicates(["ticket_id", "event_type"]).set_index(
        ["ticket_id", "event_type"]
    )
    created = last["created_at"]
    # First replies 08:05 -> 08:35 and 09:00 -> 09:20; first solve 08:05 -> 16:00.
    replies = first.xs("agent_reply", level="event_type")["event_at"]
    assert minutes(replies, created.loc[replies.index]) == [30.0, 20.0]
    solved = first.xs("solved", level="event_type")["event_at"]
    assert minutes(solved, created.loc[solved.index]) == [475.0]


def test_shipped_freshdesk_mappings_read_the_ticket_csv_export(tmp_path: Path) -> None:
    landing = import_example(tmp_path, "freshdesk/tickets.yaml", "freshdesk/ticket_events.yaml")
    tickets = staged(landing, "tickets").set_index("ticket_id")
    assert tickets["channel"].tolist() == ["email", "web", "phone"]
    assert tickets["priority"].tolist() == ["urgent", "normal", "low"]
    assert tickets.loc["5001", "customer_id"] == tickets.loc["5003", "customer_id"] == "80011"
    events = staged(landing, "ticket_events")
    got = sorted(zip(events["ticket_id"], events["event_type"], strict=True))
    assert got == [("5001", "agent_reply"), ("5001", "closed"), ("5001", "solved"),
                   ("5003", "agent_reply"), ("5003", "solved")]  # fmt: skip
    # First responses 45 and 10 minutes, resolutions 390 and 30 (from the export's columns
    # "First response time (in hrs)" 0.75 / 0.17 and "Resolution time (in hrs)" 6.5 / 0.5).
    at = events.set_index(["event_type", "ticket_id"])["event_at"]
    created = tickets["created_at"]
    replies, solves = at.loc["agent_reply"], at.loc["solved"]
    assert minutes(replies, created.loc[replies.index]) == [45.0, 10.0]
    assert minutes(solves, created.loc[solves.index]) == [390.0, 30.0]


def test_shipped_generic_event_log_mapping(tmp_path: Path) -> None:
    landing = import_example(tmp_path, "event_log/ticket_events.yaml")
    tickets = staged(landing, "tickets").set_index("ticket_id")
    # Created at each case's first event: 08:00 and 23:30 at UTC+1.
    assert tickets["created_at"].dt.strftime("%d %H:%M").tolist() == ["23 07:00", "23 22:30"]
    events = staged(landing, "ticket_events")
    case_1 = events[events["ticket_id"] == "C-1"].sort_values("event_at", kind="stable")
    assert case_1["event_type"].tolist() == [
        "agent_reply", "pending", "agent_reply", "solved", "agent_reply", "reopened", "solved",
        "closed",
    ]  # fmt: skip
    assert events[events["ticket_id"] == "C-2"]["event_type"].tolist() == ["escalated"]


def test_the_pipeline_pulls_a_sql_source_itself(tmp_path: Path, postgres_url: str) -> None:
    """CX_SQL_SOURCES adds a pull asset upstream of raw_tickets: one `dagster asset
    materialize` over two days pulls, reads and stages each day from the real server."""
    helpdesk_replica(
        postgres_url,
        "('T1', 'ann', '2026-11-20 10:00+00', 'Phone'), ('T2', 'bob', '2026-11-21 11:00+00', "
        "'Mail'), ('T3', 'cy', '2026-11-21 12:00+00', 'Fax')",
    )
    mapping = tmp_path / "replica.yaml"
    mapping.write_text(SQL_MAPPING, encoding="utf-8")
    env = {
        **os.environ,
        "CX_SQL_SOURCES": str(mapping),
        "CX_TEST_HELPDESK_REPLICA_URL": postgres_url,
        "CX_START_DATE": "2026-11-20",
        "CX_DATA_DIR": str(tmp_path / "data"),
        "DAGSTER_HOME": str(tmp_path / "home"),
        "CX_REJECT_THRESHOLD": "0.6",  # 1 of the 21st's 2 rows is quarantined on purpose
    }
    (tmp_path / "home").mkdir()
    run = subprocess.run(
        [Path(sys.executable).parent / "dagster", "asset", "materialize", "-m",
         "cx_pipeline.definitions", "--select", "pull_replica,raw_tickets,stg_tickets",
         "--partition-range", "2026-11-20...2026-11-21"],
        env=env, capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert postgres_url.split("@")[0] not in run.stdout + run.stderr  # no credentials logged
    out = tmp_path / "data" / "output"
    staged = pd.read_parquet(out / "stg_tickets").sort_values("ticket_id")
    assert staged["ticket_id"].tolist() == ["T1", "T2"]
    assert staged["channel"].tolist() == ["phone", "email"]
    rejects = pd.read_parquet(out / "stg_rejects")
    assert rejects["message"].str.contains("channel: not one of").tolist() == [True]  # T3's Fax


def test_mappings_imported_together_cover_the_same_days(tmp_path: Path) -> None:
    # Tickets of 11-23 only; their events run to 11-25. Together, both sources get drops
    # for 11-23, 11-24 and 11-25 (header-only where a day has no rows of that source).
    write(tmp_path, MAPPING)
    (tmp_path / "events.csv").write_text(
        "ticket,at,what\n101,2026-11-23T10:00:00Z,agent_reply\n101,2026-11-25T09:00:00Z,solved\n",
        encoding="utf-8",
    )
    events = tmp_path / "events.yaml"
    events.write_text(
        "source: ticket_events\nread: {path: events.csv, format: csv}\n"
        "rename: {ticket: ticket_id, at: event_at, what: event_type}\n",
        encoding="utf-8",
    )
    landing = tmp_path / "landing"
    mappings = [load_mapping(tmp_path / "tickets.yaml"), load_mapping(events)]
    written = write_drops(mappings, landing, "UTC")
    assert (written.drops, written.first, written.last) == (
        6,
        dt.date(2026, 11, 23),
        dt.date(2026, 11, 25),
    )
    for source in ("tickets", "ticket_events"):
        days = sorted(path.stem for path in (landing / source).iterdir())
        assert days == ["2026-11-23", "2026-11-24", "2026-11-25"]
    assert pd.read_csv(landing / "tickets" / "2026-11-25.csv").empty


def test_an_event_log_takes_ticket_fields_and_creation_from_columns(tmp_path: Path) -> None:
    # The log says when the case was opened and who the customer is (on some rows only),
    # and records "Wait" and "Resolve" again without a change of status in between.
    (tmp_path / "log.csv").write_text(
        "case,activity,at,who,customer,chan,opened\n"
        "K1,Take,2026-11-23 09:10:00+00:00,a,,email,2026-11-23 08:00:00+00:00\n"
        "K1,Wait,2026-11-23 09:20:00+00:00,a,C7,email,\n"
        "K1,Wait,2026-11-23 09:40:00+00:00,a,C7,email,\n"
        "K1,Resolve,2026-11-23 10:00:00+00:00,a,C7,email,\n"
        "K1,Resolve,2026-11-23 10:30:00+00:00,b,C7,email,\n"
        "K1,Close,2026-11-23 11:00:00+00:00,system,C7,email,\n",
        encoding="utf-8",
    )
    path = tmp_path / "log.yaml"
    path.write_text(
        "read: {path: log.csv, format: csv}\n"
        "event_log:\n"
        "  case_id: case\n  activity: activity\n  timestamp: at\n  actor: who\n"
        "  created_at: opened\n"
        "  ticket_columns: {customer_id: customer, channel: chan}\n"
        "  ticket_constants: {priority: normal}\n"
        "  activities: {Take: agent_reply, Wait: pending, Resolve: solved, Close: closed}\n",
        encoding="utf-8",
    )
    mapping = load_mapping(path)
    frames = to_canonical(mapping, read_source(mapping))
    ticket = frames["tickets"].iloc[0]
    assert ticket["created_at"] == "2026-11-23T08:00:00+00:00"  # the column, not 09:10
    assert (ticket["customer_id"], ticket["channel"], ticket["priority"]) == (
        "C7",  # the case's first non-empty value
        "email",
        "normal",
    )
    events = frames["ticket_events"]
    # The second Wait and the second Resolve change nothing: one pending, one solve.
    assert events["event_type"].tolist() == ["agent_reply", "pending", "solved", "closed"]
    assert events["event_at"].tolist()[1:3] == [
        "2026-11-23T09:20:00+00:00",
        "2026-11-23T10:00:00+00:00",
    ]
