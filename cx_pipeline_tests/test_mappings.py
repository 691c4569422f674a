"""Source mappings: errors named before data is read, and conversion of a small export."""

from __future__ import annotations

from pathlib import Path

import pytest

from cx_pipeline.lib.mappings import MappingError, load_mapping, read_source, to_canonical

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
