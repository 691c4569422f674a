"""The four raw sources and their canonical columns (docs/data-model.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandera.pandas as pa

from cx_pipeline.lib import schemas


@dataclass(frozen=True)
class Source:
    """A raw source: what its drops hold and how its rows are staged."""

    name: str
    model: type[pa.DataFrameModel]
    # Columns a drop must have; the other canonical columns may be absent (empty).
    required: tuple[str, ...]
    # Identity of a row: a later version of the same key replaces an earlier one.
    key: tuple[str, ...]
    timestamps: tuple[str, ...] = ()
    # Timestamps that may lie after the drop's day (a churn date set at a contract's end, or
    # when a lapse will take effect): only the earliest plausible time applies to them.
    may_be_future: tuple[str, ...] = ()
    numbers: tuple[str, ...] = ()
    # Free-text categories compared case-insensitively (stored lower case).
    lowercase: tuple[str, ...] = ()
    # Values an empty optional column gets: a constant, or per survey type etc.
    defaults: tuple[tuple[str, Any], ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.model.to_schema().columns)

    @property
    def raw_table(self) -> str:
        return f"raw_{self.name}"

    @property
    def staged_table(self) -> str:
        return f"stg_{self.name}"


UNSPECIFIED_STAGE = ("journey_stage", "(unspecified)")

TICKETS = Source(
    name="tickets",
    model=schemas.StgTickets,
    required=("ticket_id", "customer_id", "created_at", "channel", "priority"),
    key=("ticket_id",),
    timestamps=("created_at",),
    lowercase=("channel", "priority", "journey_stage"),
    defaults=(("topic", "(no topic)"), UNSPECIFIED_STAGE),
)
TICKET_EVENTS = Source(
    name="ticket_events",
    model=schemas.StgTicketEvents,
    required=("ticket_id", "event_at", "event_type"),
    key=("ticket_id", "event_at", "event_type", "actor", "sequence"),
    timestamps=("event_at",),
    numbers=("handle_seconds", "sequence"),
    lowercase=("event_type",),
)
SURVEY_RESPONSES = Source(
    name="survey_responses",
    model=schemas.StgSurveyResponses,
    required=("response_id", "customer_id", "survey_type", "score", "submitted_at"),
    key=("response_id",),
    timestamps=("submitted_at", "sent_at"),
    numbers=("score", "scale_max"),
    lowercase=("survey_type", "channel", "scale_direction", "journey_stage"),
    defaults=(
        UNSPECIFIED_STAGE,
        ("scale_max", ("survey_type", {"nps": 10.0, "csat": 5.0, "ces": 7.0})),
        # A CES question's wording decides its direction ("made it easy" vs "how much
        # effort"), so a CES answer must say it; NPS and CSAT are always higher-is-better.
        ("scale_direction", ("survey_type", dict.fromkeys(("nps", "csat"), "higher_is_better"))),
    ),
)
CUSTOMERS = Source(
    name="customers",
    model=schemas.StgCustomers,
    required=("customer_id", "signed_up_at"),
    key=("customer_id",),
    timestamps=("signed_up_at", "churned_at"),
    may_be_future=("churned_at",),
)

SOURCES: tuple[Source, ...] = (TICKETS, TICKET_EVENTS, SURVEY_RESPONSES, CUSTOMERS)
SOURCES_BY_NAME = {source.name: source for source in SOURCES}
