"""A tiny, hand-made set of drops (2026-01-01 .. 2026-01-03) whose metrics the
tests work out by hand. Times are UTC; the reporting zone is UTC.

Customers
  C1 signed up 2025-11-15, active throughout.
  C2 signed up 2025-12-20; the 01-02 drop updates it: churned 2026-01-02 15:00.
  C3 signed up 2025-12-05, churned 2025-12-31 23:00 (before the first day).
  C4 signed up 2026-01-02 08:00.
  C5 signed up 2026-01-03 10:00 and churned the same day 18:00.

Tickets (id, customer, created, channel, topic, priority)
  T1 C1 01-01 09:00 email billing  high
  T2 C2 01-01 10:00 chat  доставка normal
  T3 C1 01-01 23:30 email billing  high
  T9 C1 01-01 12:00 fax   billing  high   <- rejected: unknown channel (row 4)
  T4 C4 01-02 08:30 email 退款      high
  T5 C4 01-03 11:00 phone billing  normal

Events
  01-01  T1 agent_reply 09:30 (twice: an exact duplicate row), T2 agent_reply 10:10,
         T2 solved 11:10
  01-02  T3 agent_reply 01:30 (first response across midnight), T2 reopened 09:00,
         T2 agent_reply 09:30, T2 solved 12:00 (a second solve), T4 agent_reply 08:45
  01-03  T1 solved 09:00 (two days after creation), T3 solved 11:30, T4 closed 08:30,
         T5 agent_reply 11:06
"""

from __future__ import annotations

from pathlib import Path

DAYS = ("2026-01-01", "2026-01-02", "2026-01-03")

SURVEY_HEADER = (
    "response_id,customer_id,ticket_id,survey_type,score,submitted_at,channel,comment,"
    "scale_direction\n"
)

DROPS: dict[str, dict[str, str]] = {
    "customers": {
        "2026-01-01": """customer_id,signed_up_at,churned_at,plan,segment,region
C1,2025-11-15T10:00:00Z,,pro,smb,emea
C2,2025-12-20T09:00:00Z,,free,smb,latam
C3,2025-12-05T12:00:00Z,2025-12-31T23:00:00Z,free,smb,apac
""",
        "2026-01-02": """customer_id,signed_up_at,churned_at,plan,segment,region
C4,2026-01-02T08:00:00Z,,starter,mid-market,na
C2,2025-12-20T09:00:00Z,2026-01-02T15:00:00Z,free,smb,latam
""",
        "2026-01-03": """customer_id,signed_up_at,churned_at,plan,segment,region
C5,2026-01-03T10:00:00Z,2026-01-03T18:00:00Z,free,smb,emea
""",
    },
    "tickets": {
        "2026-01-01": """ticket_id,customer_id,created_at,channel,topic,priority,agent_group
T1,C1,2026-01-01T09:00:00Z,email,billing,high,billing
T2,C2,2026-01-01T11:00:00+01:00,Chat,доставка,normal,tier1
T3,C1,2026-01-01T23:30:00Z,email,billing,high,billing
T9,C1,2026-01-01T12:00:00Z,fax,billing,high,billing
""",
        "2026-01-02": """ticket_id,customer_id,created_at,channel,topic,priority,agent_group
T4,C4,2026-01-02T08:30:00Z,email,退款,high,billing
""",
        "2026-01-03": """ticket_id,customer_id,created_at,channel,topic,priority,agent_group
T5,C4,2026-01-03T11:00:00Z,phone,billing,normal,tier1
""",
    },
    "ticket_events": {
        "2026-01-01": """ticket_id,event_at,event_type,actor,handle_seconds
T1,2026-01-01T09:30:00Z,agent_reply,agent-01,
T1,2026-01-01T09:30:00Z,agent_reply,agent-01,
T2,2026-01-01T10:10:00Z,agent_reply,agent-02,240
T2,2026-01-01T11:10:00Z,solved,agent-02,
""",
        "2026-01-02": """ticket_id,event_at,event_type,actor,handle_seconds
T3,2026-01-02T01:30:00Z,agent_reply,agent-03,
T2,2026-01-02T09:00:00Z,reopened,customer,
T2,2026-01-02T09:30:00Z,agent_reply,agent-02,
T2,2026-01-02T12:00:00Z,solved,agent-02,
T4,2026-01-02T08:45:00Z,agent_reply,agent-01,
""",
        "2026-01-03": """ticket_id,event_at,event_type,actor,handle_seconds
T1,2026-01-03T09:00:00Z,solved,agent-01,
T3,2026-01-03T11:30:00Z,solved,agent-03,
T4,2026-01-03T08:30:00Z,closed,system,
T5,2026-01-03T11:06:00Z,agent_reply,agent-04,90
""",
    },
    "survey_responses": {
        "2026-01-01": SURVEY_HEADER
        + """R1,C2,T2,csat,5,2026-01-01T12:00:00Z,chat,"Atendimento excelente, obrigado!",
R2,C1,,nps,11,2026-01-01T13:00:00Z,email,out of range,
R3,C1,,nps,9,2026-01-01T14:00:00Z,email,Всё отлично,
""",
        "2026-01-02": SURVEY_HEADER
        + """R4,C4,T4,ces,6,2026-01-02T10:00:00Z,email,很好,higher_is_better
""",
        "2026-01-03": SURVEY_HEADER + """""",
    },
}


def write_small_world(landing: Path) -> Path:
    for source, drops in DROPS.items():
        (landing / source).mkdir(parents=True, exist_ok=True)
        for day, text in drops.items():
            (landing / source / f"{day}.csv").write_text(text, encoding="utf-8")
    return landing
