"""Source mappings: errors named before data is read, and conversion of a small export."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from cx_pipeline.lib.mappings import (
    MappingError,
    load_mapping,
    read_source,
    to_canonical,
    write_drops,
)

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


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("Requester: customer_id", "Requester: customer"), "rename.customer: not a column"),
        (('"Ticket ID": ticket_id', '"Ticket": ticket_id'), "rename.Ticket: no such column"),
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


def test_a_sql_source_is_pulled_day_by_day_from_a_real_postgresql(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = sa.create_engine(postgres_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE SCHEMA helpdesk")
        connection.exec_driver_sql(
            "CREATE TABLE helpdesk.tickets (id text, requester text, opened timestamptz, via text)"
        )
        connection.exec_driver_sql(
            "INSERT INTO helpdesk.tickets VALUES "
            "('T1', 'ann', '2026-11-22 22:30+00', 'Phone'),"  # 23:30 in Rome: the 22nd
            "('T2', 'bob', '2026-11-22 23:30+00', 'Mail'),"  # 00:30 in Rome: the 23rd
            "('T3', 'cy',  '2026-11-23 22:59+00', 'Phone'),"  # 23:59 in Rome: the 23rd
            "('T4', 'di',  '2026-11-24 12:00+00', 'Mail')"  # the 24th: outside the range
        )
    engine.dispose()
    monkeypatch.setenv("CX_TEST_HELPDESK_REPLICA_URL", postgres_url)
    path = tmp_path / "replica.yaml"
    path.write_text(SQL_MAPPING, encoding="utf-8")
    mapping = load_mapping(path)
    landing = tmp_path / "landing"
    written = write_drops(
        mapping, landing, "Europe/Rome", dt.date(2026, 11, 22), dt.date(2026, 11, 23)
    )
    assert written == 2
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
