"""Real public data through shipped source mappings, checked against figures computed
independently with plain DuckDB SQL over the raw file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from cx_pipeline.settings import PROJECT_ROOT

BIN = Path(sys.executable).parent
SHARED = PROJECT_ROOT.parent / "shared" / "data"
HELPDESK = SHARED / "helpdesk_eventlog" / "helpdesk.csv"
needs_shared = pytest.mark.skipif(
    not HELPDESK.exists(), reason="../shared/data is not beside the project"
)

# Per ticket (case): created at its first event, first taken in charge, first resolved.
HELPDESK_SQL = """
SET TimeZone = 'UTC';
CREATE TEMP TABLE raw AS
SELECT "case:concept:name" AS ticket, "concept:name" AS activity,
       CAST("time:timestamp" AS TIMESTAMPTZ) AS event_at
FROM read_csv('{path}', all_varchar = true);
CREATE TEMP TABLE tickets AS
SELECT ticket, MIN(event_at) AS created,
       MIN(event_at) FILTER (WHERE activity = 'Take in charge ticket') AS first_taken,
       MIN(event_at) FILTER (WHERE activity IN ('Resolve ticket', 'Closed')) AS first_resolved
FROM raw GROUP BY ticket;
"""


@needs_shared
def test_helpdesk_event_log_backfills_from_the_cli(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "CX_START_DATE": "2010-01-13",  # the log's first day
        "CX_DATA_DIR": str(tmp_path / "data"),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    (tmp_path / "dagster_home").mkdir()
    mapping = PROJECT_ROOT / "examples" / "helpdesk_eventlog" / "ticket_events.yaml"
    landing = tmp_path / "data" / "landing"
    imported = subprocess.run(
        [BIN / "cx-pipeline", "import", mapping, "--landing", landing],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr[-3000:]
    assets = "raw_tickets,raw_ticket_events,stg_tickets,stg_ticket_events,fct_tickets,"
    assets += "agg_daily_ticket_activity,agg_daily_workload,agg_daily_resolution_time"
    run = subprocess.run(
        [BIN / "dagster", "asset", "materialize", "-m", "cx_pipeline.definitions",
         "--select", assets, "--partition-range", "2010-01-13...2010-01-31"],
        env=env, capture_output=True, text=True, timeout=900, cwd=PROJECT_ROOT,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]

    db = duckdb.connect()
    db.execute(HELPDESK_SQL.format(path=HELPDESK))
    out = tmp_path / "data" / "output"

    def pipeline(sql: str) -> tuple:
        return db.execute(sql.format(out=out)).fetchone()  # type: ignore[return-value]

    def independent(sql: str) -> tuple:
        return db.execute(sql).fetchone()  # type: ignore[return-value]

    # Tickets created over the range.
    created = (
        "SELECT COUNT(*) FROM tickets "
        "WHERE CAST(created AS DATE) BETWEEN '2010-01-13' AND '2010-01-31'"
    )
    assert pipeline(
        "SELECT SUM(tickets_created) FROM read_parquet('{out}/agg_daily_workload/*/*.parquet')"
    ) == independent(created)
    # First responses (taken in charge) and first resolutions over the range: counts and
    # summed minutes (the numerators of the means).
    mine = pipeline(
        "SELECT SUM(tickets_first_responded), SUM(first_response_minutes_sum), "
        "SUM(tickets_resolved), SUM(resolution_minutes_sum) "
        "FROM read_parquet('{out}/agg_daily_resolution_time/*/*.parquet')"
    )
    in_range = "CAST({} AS DATE) BETWEEN '2010-01-13' AND '2010-01-31'"
    theirs = independent(
        f"""SELECT
        COUNT(*) FILTER (WHERE {in_range.format("first_taken")}),
        SUM(epoch(first_taken - created) / 60) FILTER (WHERE {in_range.format("first_taken")}),
        COUNT(*) FILTER (WHERE {in_range.format("first_resolved")}),
        SUM(epoch(first_resolved - created) / 60) FILTER (WHERE {in_range.format("first_resolved")})
        FROM tickets"""
    )
    assert (mine[0], mine[2]) == (theirs[0], theirs[2])
    assert mine[1] == pytest.approx(theirs[1]) and mine[3] == pytest.approx(theirs[3])
    assert theirs[0] >= 10  # not a vacuous comparison (14 in this range)
