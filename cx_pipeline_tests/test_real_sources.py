"""Real public data through shipped source mappings, checked against figures computed
independently with plain DuckDB SQL over the raw file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from cx_pipeline.settings import PROJECT_ROOT
from cx_pipeline_tests.ui import backfill_as_the_ui_does, dagster_dev

BIN = Path(sys.executable).parent
SHARED = PROJECT_ROOT.parent / "shared" / "data"
HELPDESK = SHARED / "helpdesk_eventlog" / "helpdesk.csv"
needs_shared = pytest.mark.skipif(
    not HELPDESK.exists(), reason="../shared/data is not beside the project"
)

HELPDESK_ASSETS = (
    "raw_tickets,raw_ticket_events,stg_tickets,stg_ticket_events,fct_tickets,"
    "agg_daily_ticket_activity,agg_daily_workload,agg_daily_resolution_time,"
    "fct_open_tickets,agg_daily_backlog"
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
-- Reopened: the first "Take in charge" after each "Resolve ticket" (duplicate rows once).
CREATE TEMP TABLE events AS SELECT DISTINCT ticket, activity, event_at FROM raw;
CREATE TEMP TABLE numbered AS
SELECT *, SUM(CASE WHEN activity = 'Resolve ticket' THEN 1 ELSE 0 END)
          OVER (PARTITION BY ticket ORDER BY event_at ROWS UNBOUNDED PRECEDING) AS solves
FROM events;
CREATE TEMP TABLE reopens AS
SELECT ticket, solves, MIN(event_at) AS reopened FROM numbered
WHERE activity = 'Take in charge ticket' AND solves > 0 GROUP BY ticket, solves;
"""
# Open at an instant: created before it, and neither resolved nor closed since the last
# reopening before it.
HELPDESK_BACKLOG = """
SELECT COUNT(*) FROM (
  SELECT
    (SELECT MAX(event_at) FROM events e WHERE e.ticket = t.ticket
       AND activity IN ('Resolve ticket', 'Closed') AND event_at < {end}) AS done,
    (SELECT MAX(reopened) FROM reopens r WHERE r.ticket = t.ticket AND reopened < {end})
       AS reopened
  FROM tickets t WHERE created < {end}
) WHERE done IS NULL OR reopened > done
"""


def import_and_materialize(
    tmp_path: Path, mappings: list[str], days: tuple[str, str], assets: str,
    import_range: bool = False, timezone: str = "UTC",
) -> Path:  # fmt: skip
    """``cx-pipeline import`` the shipped mappings, then ``dagster asset materialize`` the
    assets over ``days`` with the pipeline starting on the first; returns the output folder."""
    first, last = days
    env = {
        **os.environ,
        "CX_START_DATE": first,
        "CX_REPORTING_TIMEZONE": timezone,
        "CX_DATA_DIR": str(tmp_path / "data"),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    (tmp_path / "dagster_home").mkdir()
    landing = tmp_path / "data" / "landing"
    # One command for all the mappings: their drops cover the same days.
    command = [BIN / "cx-pipeline", "import", *(PROJECT_ROOT / "examples" / m for m in mappings)]
    command += ["--landing", landing]
    command += ["--start", first, "--end", last] if import_range else []
    imported = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert imported.returncode == 0, imported.stderr[-3000:]
    span = first if first == last else f"{first}...{last}"
    run = subprocess.run(
        [BIN / "dagster", "asset", "materialize", "-m", "cx_pipeline.definitions",
         "--select", assets, "--partition-range" if first != last else "--partition", span],
        env=env, capture_output=True, text=True, timeout=900, cwd=PROJECT_ROOT,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    return tmp_path / "data" / "output"


@needs_shared
def test_helpdesk_event_log_backfills_from_the_cli(tmp_path: Path) -> None:
    # 2010-01-13 is the log's first day.
    out = import_and_materialize(
        tmp_path, ["helpdesk_eventlog/ticket_events.yaml"], ("2010-01-13", "2010-01-31"),
        HELPDESK_ASSETS,
    )  # fmt: skip

    db = duckdb.connect()
    db.execute(HELPDESK_SQL.format(path=HELPDESK))

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
    # Reopens (tickets reopened, per day) and the backlog at the end of 2010-01-31.
    assert (
        pipeline(
            "SELECT SUM(tickets_reopened) FROM "
            "read_parquet('{out}/agg_daily_ticket_activity/*/*.parquet')"
        )
        == independent(
            "SELECT COUNT(DISTINCT (ticket, CAST(reopened AS DATE))) FROM reopens "
            "WHERE CAST(reopened AS DATE) BETWEEN '2010-01-13' AND '2010-01-31'"
        )
        == (2,)
    )
    assert (
        pipeline(
            "SELECT SUM(open_tickets) FROM read_parquet('{out}/agg_daily_backlog/*/*.parquet') "
            "WHERE date = '2010-01-31'"
        )
        == independent(HELPDESK_BACKLOG.format(end="TIMESTAMPTZ '2010-02-01 00:00:00+00'"))
        == (10,)
    )


TELCO = SHARED / "telco_churn" / "WA_Fn-UseC_-Telco-Customer-Churn.csv"
# Churn by contract and by tenure year, straight from the file: tenure is in months, the
# file is the snapshot of 2020-01-31 (our choice) and Churn = Yes left in its last month.
TELCO_SQL = """
SELECT 'plan' AS breakdown, Contract AS value, COUNT(*) AS customers,
       COUNT(*) FILTER (WHERE Churn = 'Yes') AS churned
FROM read_csv('{path}') GROUP BY Contract
UNION ALL
SELECT 'tenure_band',
       CASE WHEN tenure >= 72 THEN '72+ months'
            ELSE lpad(CAST(tenure // 12 * 12 AS VARCHAR), 2, '0') || '-'
                 || CAST(tenure // 12 * 12 + 11 AS VARCHAR) || ' months' END,
       COUNT(*), COUNT(*) FILTER (WHERE Churn = 'Yes')
FROM read_csv('{path}') GROUP BY 2
ORDER BY 1, 2
"""


@needs_shared
def test_telco_churn_by_contract_and_tenure(tmp_path: Path) -> None:
    out = import_and_materialize(
        tmp_path, ["telco_churn/customers.yaml"], ("2020-01-31", "2020-01-31"),
        "raw_customers,stg_customers,int_current_customers,agg_daily_churn,agg_daily_churn_by_segment",
        import_range=True,
    )  # fmt: skip
    db = duckdb.connect()
    total = db.sql(
        f"SELECT customers_at_start, customers_churned, churn_rate "
        f"FROM read_parquet('{out}/agg_daily_churn/*/*.parquet')"
    ).fetchall()
    assert total == [(7043, 1859, pytest.approx(1859 / 7043))]
    mine = db.sql(
        f"SELECT breakdown, breakdown_value, customers_at_start, customers_churned "
        f"FROM read_parquet('{out}/agg_daily_churn_by_segment/*/*.parquet') "
        f"WHERE breakdown IN ('plan', 'tenure_band') ORDER BY 1, 2"
    ).fetchall()
    theirs = db.sql(TELCO_SQL.format(path=TELCO)).fetchall()
    assert mine == theirs
    # Month-to-month customers churn most: 1,389 of 3,916 (35.5 %).
    assert ("plan", "Month-to-month", 3916, 1389) in theirs


BOTANIC = SHARED / "botanic_nps" / "nps.csv"
# NPS per period t (placed on day 2020-01-01 + t), from the answers with a score and a period.
BOTANIC_SQL = """
SELECT DATE '2020-01-01' + CAST(t AS INTEGER) AS day, COUNT(*) AS responses,
       100.0 * (COUNT(*) FILTER (WHERE CAST(nps AS INTEGER) >= 9)
                - COUNT(*) FILTER (WHERE CAST(nps AS INTEGER) <= 6)) / COUNT(*) AS nps
FROM answers WHERE nps <> 'NA' AND t <> 'NA'
GROUP BY 1 ORDER BY 1
"""


@needs_shared
def test_garden_centre_nps_survey_per_period(tmp_path: Path) -> None:
    out = import_and_materialize(
        tmp_path, ["botanic_nps/survey_responses.yaml"], ("2020-01-01", "2020-01-18"),
        "raw_survey_responses,stg_survey_responses,agg_daily_nps,agg_daily_csat,agg_daily_ces",
    )  # fmt: skip
    # The file is latin-1, which DuckDB's CSV reader refuses: pandas reads it as text.
    answers = pd.read_csv(BOTANIC, encoding="latin-1", dtype="str", keep_default_na=False)
    db = duckdb.connect()
    db.register("answers", answers)
    theirs = db.sql(BOTANIC_SQL).fetchall()
    mine = db.sql(
        f"SELECT date, responses, nps FROM read_parquet('{out}/agg_daily_nps/*/*.parquet') "
        f"WHERE window_days = 1 AND breakdown = 'all' ORDER BY date"
    ).fetchall()
    assert [(d, n) for d, n, _ in mine] == [(d, n) for d, n, _ in theirs]
    assert [s for *_, s in mine] == pytest.approx([s for *_, s in theirs])
    assert len(theirs) == 18 and theirs[0][1] == 3063 - 87  # period 0: 87 answers without NPS
    # Nothing is lost: the answers without a score or a period are quarantined.
    unusable = db.execute("SELECT COUNT(*) FROM answers WHERE nps = 'NA' OR t = 'NA'").fetchone()
    rejected = db.execute(
        f"SELECT COUNT(DISTINCT (file, row_number)) "
        f"FROM read_parquet('{out}/stg_rejects/*/*.parquet') WHERE source = 'survey_responses'"
    ).fetchone()
    assert rejected == unusable


OLIST = SHARED / "olist_subset"
# Everything on Brazilian local time, as the files are; the pipeline's day ends at
# 2018-09-01 00:00 there. A customer starts with their first order and lapses 180 days
# after their latest order known by then.
OLIST_SQL = """
CREATE TEMP TABLE orders AS
SELECT c.customer_unique_id AS customer, CAST(o.order_purchase_timestamp AS TIMESTAMP) AS ordered
FROM read_csv('{olist}/olist_orders_dataset.csv', all_varchar = true) o
JOIN read_csv('{olist}/olist_customers_dataset.csv', all_varchar = true) c USING (customer_id)
WHERE CAST(o.order_purchase_timestamp AS TIMESTAMP) < TIMESTAMP '2018-09-01';
CREATE TEMP TABLE per_customer AS
SELECT customer, date_trunc('month', MIN(ordered)) AS cohort,
       MAX(ordered) + INTERVAL 180 DAY AS lapse, COUNT(*) AS orders
FROM orders GROUP BY customer;
CREATE TEMP TABLE reviews AS
SELECT CAST(review_score AS INTEGER) AS score,
       CAST(review_creation_date AS TIMESTAMP) AS sent,
       CAST(review_answer_timestamp AS TIMESTAMP) AS answered
FROM read_csv('{olist}/olist_order_reviews_dataset.csv', all_varchar = true);
"""
OLIST_TRIANGLE = """
SELECT CAST(cohort AS DATE), k, COUNT(*),
       COUNT(*) FILTER (WHERE NOT (lapse < TIMESTAMP '2018-09-01'
                                   AND lapse < cohort + TO_MONTHS(CAST(k + 1 AS INTEGER))))
FROM per_customer, range(0, 36) AS months(k)
WHERE cohort + TO_MONTHS(CAST(k AS INTEGER)) <= TIMESTAMP '2018-08-01'
GROUP BY ALL ORDER BY 1, 2
"""
OLIST_CSAT = """
SELECT COUNT(*), COUNT(*) FILTER (WHERE score >= 4),
       MEDIAN(epoch(answered - sent) / 60), SUM(epoch(answered - sent) / 60)
FROM reviews WHERE answered >= TIMESTAMP '2018-08-02' AND answered < TIMESTAMP '2018-09-01'
"""


@needs_shared
def test_olist_reviews_as_csat_and_repeat_purchase_retention(tmp_path: Path) -> None:
    assets = "raw_customers,stg_customers,int_current_customers,"
    assets += "raw_survey_responses,stg_survey_responses,"
    assets += "agg_daily_churn,agg_daily_churn_by_segment,agg_retention_cohorts,"
    assets += "agg_daily_nps,agg_daily_csat,agg_daily_ces"
    out = import_and_materialize(
        tmp_path, ["olist/customers.yaml", "olist/survey_responses.yaml"],
        ("2018-08-29", "2018-08-31"), assets, import_range=True, timezone="America/Sao_Paulo",
    )  # fmt: skip
    db = duckdb.connect()
    db.execute(OLIST_SQL.format(olist=OLIST))
    triangle = db.sql(
        f"SELECT cohort_month, months_since_signup, cohort_customers, customers_active "
        f"FROM read_parquet('{out}/agg_retention_cohorts/*/*.parquet') "
        f"WHERE date = DATE '2018-08-31' ORDER BY 1, 2"
    ).fetchall()
    assert triangle == db.sql(OLIST_TRIANGLE).fetchall()
    assert len(triangle) > 200  # 24 cohorts, Sep 2016 .. Aug 2018
    # CSAT over the 30 days to 2018-08-31: answers, satisfied (4-5), answer time.
    mine = db.execute(
        f"SELECT responses, satisfied, answer_minutes_median, answer_minutes_sum "
        f"FROM read_parquet('{out}/agg_daily_csat/*/*.parquet') "
        f"WHERE date = DATE '2018-08-31' AND window_days = 30 AND breakdown = 'all'"
    ).fetchone()
    theirs = db.execute(OLIST_CSAT).fetchone()
    assert mine is not None and theirs is not None
    assert mine[:2] == theirs[:2] and theirs[0] > 100
    assert mine[2:] == pytest.approx(theirs[2:])


@needs_shared
def test_helpdesk_backfill_launched_as_the_ui_does(tmp_path: Path) -> None:
    """`dagster dev` (webserver and daemon), then the GraphQL mutation the UI's
    "Materialize selected" with a date range sends: a real asset backfill."""
    env = {
        **os.environ,
        "CX_START_DATE": "2010-01-13",
        "CX_DATA_DIR": str(tmp_path / "data"),
        "DAGSTER_HOME": str(tmp_path / "home"),
    }
    (tmp_path / "home").mkdir()
    mapping = PROJECT_ROOT / "examples" / "helpdesk_eventlog" / "ticket_events.yaml"
    imported = subprocess.run(
        [BIN / "cx-pipeline", "import", mapping, "--end", "2010-01-31"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr[-3000:]
    with dagster_dev(env) as port:
        days = [f"2010-01-{day}" for day in range(13, 21)]
        assert backfill_as_the_ui_does(port, HELPDESK_ASSETS.split(","), days) == (
            "COMPLETED_SUCCESS"
        )
    out = tmp_path / "data" / "output"
    db = duckdb.connect()
    db.execute(HELPDESK_SQL.format(path=HELPDESK))
    created = db.execute(
        "SELECT COUNT(*) FROM tickets WHERE CAST(created AS DATE) BETWEEN '2010-01-13' AND "
        "'2010-01-20'"
    ).fetchone()
    mine = db.execute(
        f"SELECT SUM(tickets_created), COUNT(DISTINCT date) "
        f"FROM read_parquet('{out}/agg_daily_workload/*/*.parquet')"
    ).fetchone()
    assert mine == (created[0], 8)  # type: ignore[index]
    assert len(list((out / "agg_daily_backlog").iterdir())) == 8
