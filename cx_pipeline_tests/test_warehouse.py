"""The warehouse loader against a real DuckDB file and a real PostgreSQL server."""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from cx_pipeline.lib.store import warehouse as warehouse_module
from cx_pipeline.lib.store.parquet import partition_path
from cx_pipeline.lib.store.publish import PublishBatch, PublishError, publish, publish_days
from cx_pipeline.lib.store.tables import AGG_DAILY_CHURN, STG_REJECTS, TABLES_BY_NAME, TableSpec
from cx_pipeline.lib.store.views import views_of
from cx_pipeline.lib.store.warehouse import Warehouse, checked_identifier, display_url

DAY = dt.date(2026, 3, 4)


def churn_rows(at_start: int) -> pa.Table:
    frame = pd.DataFrame(
        [
            {
                "customers_at_start": at_start,
                "customers_new": 1,
                "customers_churned": 1,
                "customers_at_end": at_start,
                "churn_rate": 1 / at_start,
                "customers_at_start_30d": at_start,
                "customers_new_30d": 2,
                "customers_churned_30d": 2,
                "churn_rate_30d": 2 / at_start,
                "days_covered_30d": 30,
            }
        ]
    )
    return AGG_DAILY_CHURN.to_arrow(frame)


def rows_of(warehouse: Warehouse, spec: TableSpec) -> pd.DataFrame:
    return warehouse.read_frame(f"SELECT * FROM {warehouse.qualified(spec.name)} ORDER BY date")


def test_replacing_a_day_never_duplicates(warehouse_url: str) -> None:
    warehouse = Warehouse(warehouse_url)
    warehouse.replace_partition(AGG_DAILY_CHURN, DAY, churn_rows(10))
    warehouse.replace_partition(AGG_DAILY_CHURN, DAY + dt.timedelta(days=1), churn_rows(20))
    warehouse.replace_partition(AGG_DAILY_CHURN, DAY, churn_rows(30))
    rows = rows_of(warehouse, AGG_DAILY_CHURN)
    assert rows["customers_at_start"].tolist() == [30, 20]
    assert rows["date"].astype("str").tolist() == ["2026-03-04", "2026-03-05"]


def topic_rows(*topics: str) -> pd.DataFrame:
    """A day of agg_daily_tickets_by_topic with one ticket of each topic (grain: topic)."""
    count = len(topics)
    columns = {
        "topic": ("str", list(topics)),
        "tickets_created": ("int64", [1] * count),
        "tickets_created_all_topics": ("int64", [count] * count),
        "share_of_day": ("float64", [1 / max(count, 1)] * count),
        "prev_7d_days": ("int64", [7] * count),
        "prev_7d_mean": ("float64", [1.0] * count),
        "change_vs_prev_7d": ("float64", [0.0] * count),
        "change_rate_vs_prev_7d": ("float64", [0.0] * count),
    }
    return pd.DataFrame({name: pd.Series(v, dtype=t) for name, (t, v) in columns.items()})


def test_a_batch_of_days_lands_as_each_day_would(warehouse_url: str, tmp_path) -> None:
    warehouse, output = Warehouse(warehouse_url), tmp_path / "output"
    spec = TABLES_BY_NAME["agg_daily_tickets_by_topic"]
    days = [DAY + dt.timedelta(days=n) for n in range(3)]
    publish(spec, days[1], topic_rows("old"), output, warehouse)
    # Three rows in two days, then a batch of three days: held back until the fifth row.
    batch = PublishBatch(output, warehouse, max_rows=5)
    batch.add(spec, days[0], topic_rows("billing", "login"))
    batch.add(spec, days[1], topic_rows("billing"))
    batch.add(AGG_DAILY_CHURN, days[0], churn_rows(10).to_pandas())
    assert rows_of(warehouse, spec)["topic"].tolist() == ["old"]
    assert not (output / AGG_DAILY_CHURN.name).exists()
    batch.add(spec, days[2], topic_rows("login"))  # 5 rows: both tables go out
    assert rows_of(warehouse, AGG_DAILY_CHURN)["customers_at_start"].tolist() == [10]
    batch.add(spec, days[2] + dt.timedelta(days=1), topic_rows())  # an empty day, until flush
    batch.flush()
    rows = rows_of(warehouse, spec).sort_values(["date", "topic"])
    assert rows["date"].astype("str").tolist() == [
        "2026-03-04", "2026-03-04", "2026-03-05", "2026-03-06",
    ]  # fmt: skip
    assert rows["topic"].tolist() == ["billing", "login", "billing", "login"]
    assert rows["share_of_day"].tolist() == [0.5, 0.5, 1.0, 1.0]
    for day, topics in zip(days, [["billing", "login"], ["billing"], ["login"]], strict=True):
        assert pq.read_table(partition_path(output, spec.name, day))["topic"].to_pylist() == topics
    assert (
        pq.read_table(partition_path(output, spec.name, days[2] + dt.timedelta(days=1))).num_rows
        == 0
    )


def test_a_batch_with_one_bad_day_names_it_and_writes_nothing(tmp_path) -> None:
    warehouse = Warehouse(f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    output = tmp_path / "output"
    spec = TABLES_BY_NAME["agg_daily_tickets_by_topic"]
    batch = PublishBatch(output, warehouse)
    batch.add(spec, DAY, topic_rows("billing"))
    # A topic twice in one day breaks the grain (the same topic on two days does not).
    batch.add(spec, DAY + dt.timedelta(days=1), topic_rows("billing", "billing"))
    with pytest.raises(Exception, match="(?i)duplicate|unique") as failure:
        batch.flush()
    assert failure.value.__notes__ == ["in agg_daily_tickets_by_topic, day 2026-03-05"]
    assert not (output / spec.name).exists()
    # A table of one row a day: two rows on a day are refused together as alone.
    churn = churn_rows(10).to_pandas()
    with pytest.raises(Exception, match="one row a day"):
        AGG_DAILY_CHURN.days_to_arrow(
            {DAY: churn, DAY + dt.timedelta(days=1): pd.concat([churn, churn])}
        )


def test_failed_load_keeps_the_previous_rows(warehouse_url: str) -> None:
    warehouse = Warehouse(warehouse_url)
    warehouse.replace_partition(AGG_DAILY_CHURN, DAY, churn_rows(10))
    broken = churn_rows(20).set_column(0, "customers_at_start", pa.array([None], pa.int64()))
    with pytest.raises(Exception, match="(?i)null"):
        warehouse.replace_partition(AGG_DAILY_CHURN, DAY, broken)  # NOT NULL violated mid-load
    assert rows_of(warehouse, AGG_DAILY_CHURN)["customers_at_start"].tolist() == [10]


@pytest.mark.parametrize(
    "text",
    [
        'Said "it\'s fixed", but: no;\nдоставка, 退款, cobrança',
        "très long, очень длинный, 很长. " * 4000,  # ~130k characters
    ],
    ids=["scripts-and-quotes", "very-long"],
)
def test_text_in_any_script_and_quotes_round_trip(warehouse_url: str, text: str) -> None:
    warehouse = Warehouse(warehouse_url)
    frame = pd.DataFrame(
        {
            "source": ["tickets"],
            "file": ["x.csv"],
            "row_number": [3],
            "columns": ["topic"],
            "rules": ["r"],
            "message": [text],
            "raw_row": ["{}"],
        }
    )
    warehouse.replace_partition(
        STG_REJECTS, DAY, STG_REJECTS.to_arrow(frame), {"source": "tickets"}
    )
    assert rows_of(warehouse, STG_REJECTS)["message"].tolist() == [text]


def test_a_slice_of_a_day_is_replaced_alone(warehouse_url: str) -> None:
    warehouse = Warehouse(warehouse_url)

    def rejects(source: str, rows: int) -> pa.Table:
        frame = pd.DataFrame(
            {
                "source": [source] * rows,
                "file": ["f"] * rows,
                "row_number": list(range(1, rows + 1)),
                "columns": ["c"] * rows,
                "rules": ["r"] * rows,
                "message": ["m"] * rows,
                "raw_row": ["{}"] * rows,
            }
        )
        return STG_REJECTS.to_arrow(frame)

    warehouse.replace_partition(STG_REJECTS, DAY, rejects("tickets", 2), {"source": "tickets"})
    warehouse.replace_partition(STG_REJECTS, DAY, rejects("customers", 1), {"source": "customers"})
    warehouse.replace_partition(STG_REJECTS, DAY, rejects("tickets", 1), {"source": "tickets"})
    counts = rows_of(warehouse, STG_REJECTS)["source"].value_counts().to_dict()
    assert counts == {"tickets": 1, "customers": 1}


def test_concurrent_loads_of_one_day_leave_exactly_one_copy(warehouse_url: str) -> None:
    warehouse = Warehouse(warehouse_url)
    warehouse.ensure_table(AGG_DAILY_CHURN)
    errors: list[BaseException] = []

    def load(at_start: int) -> None:
        try:
            Warehouse(warehouse_url).replace_partition(AGG_DAILY_CHURN, DAY, churn_rows(at_start))
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=load, args=(n,)) for n in (11, 22, 33, 44)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(rows_of(warehouse, AGG_DAILY_CHURN)) == 1


def test_adding_a_column_later_migrates_an_existing_table(warehouse_url: str) -> None:
    warehouse = Warehouse(warehouse_url)
    with warehouse.transaction() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE agg_daily_churn (date DATE NOT NULL, customers_at_start BIGINT)"
        )
    warehouse.replace_partition(AGG_DAILY_CHURN, DAY, churn_rows(10))
    rows = rows_of(warehouse, AGG_DAILY_CHURN)
    assert rows.loc[0, "churn_rate_30d"] == pytest.approx(0.2)


def test_a_column_a_newer_version_renamed_is_dropped(warehouse_url: str) -> None:
    # csat_pct (0-100) became csat_rate (0-1): the old NOT NULL column would refuse every
    # new row, and a roll-up view over the table must not keep it from going.
    warehouse = Warehouse(warehouse_url)
    with warehouse.transaction() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE agg_daily_churn (date DATE NOT NULL, customers_at_start BIGINT, "
            "churn_pct DOUBLE PRECISION NOT NULL)"
        )
        conn.exec_driver_sql(
            "CREATE VIEW agg_weekly_churn AS SELECT date, churn_pct FROM agg_daily_churn"
        )
    warehouse.replace_partition(AGG_DAILY_CHURN, DAY, churn_rows(10))
    rows = rows_of(warehouse, AGG_DAILY_CHURN)
    assert "churn_pct" not in rows.columns and rows.loc[0, "churn_rate"] == pytest.approx(0.1)
    weekly = warehouse.read_frame("SELECT * FROM agg_weekly_churn")
    assert weekly.loc[0, "churn_rate"] == pytest.approx(0.1)


def test_every_table_is_created_with_its_comments(warehouse_url: str) -> None:
    warehouse = Warehouse(warehouse_url)
    for spec in TABLES_BY_NAME.values():
        warehouse.ensure_table(spec)
    columns = warehouse.read_frame(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema()"
    )
    for spec in TABLES_BY_NAME.values():
        got = set(columns.loc[columns["table_name"] == spec.name, "column_name"])
        assert got == {c.name for c in spec.all_columns}, spec.name


def new_process() -> None:
    """Forget what this process ensured, as a step's new process knows nothing."""
    warehouse_module._PREPARED.clear()
    warehouse_module._RECORDED.clear()


@contextmanager
def statements_run(warehouse: Warehouse) -> Iterator[list[str]]:
    """The SQL statements the warehouse's connections run inside the with-block."""
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement.lstrip().split(None, 1)[0].upper())

    sa.event.listen(warehouse.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(warehouse.engine, "before_cursor_execute", record)


DDL = {"CREATE", "ALTER", "DROP", "COMMENT"}


def test_a_new_process_skips_the_ddl_the_warehouse_already_has(warehouse_url: str) -> None:
    Warehouse(warehouse_url).ensure_table(AGG_DAILY_CHURN)
    new_process()
    warehouse = Warehouse(warehouse_url)
    with statements_run(warehouse) as statements:
        warehouse.replace_partition(AGG_DAILY_CHURN, DAY, churn_rows(10))
    assert statements and DDL.isdisjoint(statements)
    assert warehouse.read_frame("SELECT churn_rate FROM agg_weekly_churn")["churn_rate"][0] == 0.1


def test_a_changed_table_definition_is_made_in_a_new_process(warehouse_url: str) -> None:
    Warehouse(warehouse_url).ensure_table(AGG_DAILY_CHURN)
    new_process()
    newer = dataclasses.replace(
        AGG_DAILY_CHURN, date_description="The day, as a newer version says."
    )
    warehouse = Warehouse(warehouse_url)
    with statements_run(warehouse) as statements:
        warehouse.ensure_table(newer)
    assert {"COMMENT", "DROP", "CREATE"} <= set(statements)  # comments, views made again
    new_process()
    with statements_run(warehouse) as statements:
        Warehouse(warehouse_url).ensure_table(newer)
    assert DDL.isdisjoint(statements)


def test_a_table_dropped_by_hand_is_made_again(warehouse_url: str) -> None:
    warehouse = Warehouse(warehouse_url)
    warehouse.replace_partition(AGG_DAILY_CHURN, DAY, churn_rows(10))
    with warehouse.transaction() as conn:
        for view in views_of(AGG_DAILY_CHURN.name):
            conn.exec_driver_sql(f"DROP VIEW {view.name}")
        conn.exec_driver_sql("DROP TABLE agg_daily_churn")
    new_process()
    Warehouse(warehouse_url).replace_partition(AGG_DAILY_CHURN, DAY, churn_rows(20))
    assert rows_of(warehouse, AGG_DAILY_CHURN)["customers_at_start"].tolist() == [20]
    assert warehouse.read_frame("SELECT churn_rate FROM agg_weekly_churn")["churn_rate"][0] == 0.05


def test_names_from_settings_must_be_identifiers() -> None:
    assert checked_identifier("cx_marts") == "cx_marts"
    for bad in ("marts; DROP TABLE x", "a-b", "", "1abc", 'x"'):
        with pytest.raises(ValueError):
            checked_identifier(bad)
    with pytest.raises(ValueError):
        Warehouse("duckdb:///:memory:", schema="x; drop")


def test_the_password_is_never_shown() -> None:
    shown = display_url("postgresql+psycopg://cx:s3cret-pw@db.internal:5432/cx")
    assert "s3cret-pw" not in shown
    assert "db.internal" in shown


def test_a_schema_setting_puts_tables_in_that_schema(warehouse_url: str) -> None:
    warehouse = Warehouse(warehouse_url, schema="cx_marts")
    warehouse.replace_partition(AGG_DAILY_CHURN, DAY, churn_rows(10))
    assert len(warehouse.read_frame("SELECT * FROM cx_marts.agg_daily_churn")) == 1


def test_loads_of_different_days_do_not_wait_for_each_other(postgres_url: str) -> None:
    warehouse = Warehouse(postgres_url)
    warehouse.ensure_table(AGG_DAILY_CHURN)
    # A load of 03-04 holds its lock and stays open ...
    with warehouse.transaction() as held:
        held.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"agg_daily_churn/{DAY.isoformat()}"},
        )
        # ... while 03-05 loads and commits from another connection, unblocked.
        other = threading.Thread(
            target=Warehouse(postgres_url).replace_partition,
            args=(AGG_DAILY_CHURN, DAY + dt.timedelta(days=1), churn_rows(20)),
        )
        other.start()
        other.join(timeout=20)
        assert not other.is_alive()
    assert rows_of(warehouse, AGG_DAILY_CHURN)["customers_at_start"].tolist() == [20]


def churn_published(url: str, tmp_path: Path) -> tuple[Warehouse, Path]:
    """A warehouse and Parquet store whose agg_daily_churn holds DAY with 10 customers."""
    warehouse, output = Warehouse(url), tmp_path / "output"
    publish(AGG_DAILY_CHURN, DAY, churn_rows(10).to_pandas(), output, warehouse)
    return warehouse, output


def assert_both_hold(warehouse: Warehouse, output: Path, customers_at_start: int) -> None:
    """Parquet and the warehouse agree on DAY's churn row, and no temporary file is left."""
    path = partition_path(output, "agg_daily_churn", DAY)
    assert pq.read_table(path)["customers_at_start"].to_pylist() == [customers_at_start]
    at_start = rows_of(warehouse, AGG_DAILY_CHURN)["customers_at_start"].tolist()
    assert at_start == [customers_at_start]
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_a_failed_warehouse_load_leaves_parquet_and_warehouse_agreeing(
    postgres_url: str, tmp_path
) -> None:
    # A real server-side failure: a trigger that raises PostgreSQL's own disk_full error
    # (SQLSTATE 53100) on every insert, as a full tablespace would.
    warehouse, output = churn_published(postgres_url, tmp_path)
    with warehouse.transaction() as conn:
        conn.exec_driver_sql(
            "CREATE FUNCTION full_disk() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'could not extend file: No space left on device' "
            "USING ERRCODE = 'disk_full'; END $$"
        )
        conn.exec_driver_sql(
            "CREATE TRIGGER full_disk BEFORE INSERT ON agg_daily_churn "
            "FOR EACH ROW EXECUTE FUNCTION full_disk()"
        )
    with pytest.raises(PublishError) as failure:
        publish(AGG_DAILY_CHURN, DAY, churn_rows(20).to_pandas(), output, warehouse)
    message = str(failure.value)
    assert message.startswith(f"agg_daily_churn {DAY}: warehouse load failed")
    assert "No space left on device" in message
    assert "both still hold the previous rows" in message
    assert_both_hold(warehouse, output, 10)
    # The space comes back: the rerun brings both sides to the new rows.
    with warehouse.transaction() as conn:
        conn.exec_driver_sql("DROP TRIGGER full_disk ON agg_daily_churn")
    publish(AGG_DAILY_CHURN, DAY, churn_rows(20).to_pandas(), output, warehouse)
    assert_both_hold(warehouse, output, 20)


def test_a_failed_parquet_write_leaves_the_warehouse_uncommitted(
    warehouse_url: str, tmp_path
) -> None:
    # The files are written while the warehouse loads; it commits only once they are. A
    # file where the second day's folder should be makes that day's write fail for real.
    warehouse, output = churn_published(warehouse_url, tmp_path)
    next_day = DAY + dt.timedelta(days=1)
    partition_path(output, "agg_daily_churn", next_day).parent.write_text("in the way")
    days = {DAY: churn_rows(20).to_pandas(), next_day: churn_rows(30).to_pandas()}
    with pytest.raises(PublishError) as failure:
        publish_days(AGG_DAILY_CHURN, days, output, warehouse)
    message = str(failure.value)
    assert message.startswith(f"agg_daily_churn {DAY}..{next_day}: Parquet write failed")
    assert "both still hold the previous rows" in message
    assert_both_hold(warehouse, output, 10)


def test_processes_creating_one_table_at_once_take_turns(postgres_url: str) -> None:
    # Celery workers or parallel steps each create a table on its first load; PostgreSQL's
    # catalog rejects two CREATE TABLEs of one name at once (pg_type_typname_nsp_index).
    start = threading.Barrier(6)
    errors: list[BaseException] = []

    def create() -> None:
        warehouse = Warehouse(postgres_url)
        start.wait()
        try:
            warehouse.ensure_table(STG_REJECTS)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert rows_of(Warehouse(postgres_url), STG_REJECTS).empty


def another_process_can_open(database: Path) -> bool:
    """Whether a separate process can open the DuckDB file for writing right now."""
    opened = subprocess.run(
        [sys.executable, "-c", f"import duckdb; duckdb.connect({str(database)!r}).close()"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert opened.returncode == 0 or "lock" in opened.stderr.lower(), opened.stderr
    return opened.returncode == 0


@pytest.mark.parametrize("shared", [False, True])
def test_a_step_holds_the_duckdb_file_only_when_no_other_process_shares_it(
    tmp_path: Path, shared: bool
) -> None:
    # Steps side by side (CX_MAX_PROCESSES > 1) each open the file per transaction, so the
    # others compute meanwhile instead of waiting for a whole step; one process holds it.
    database = tmp_path / "warehouse.duckdb"
    warehouse = Warehouse(f"duckdb:///{database}", shared_by_processes=shared)
    with warehouse.session():
        warehouse.replace_partition(AGG_DAILY_CHURN, DAY, churn_rows(10))
        assert another_process_can_open(database) is shared
        warehouse.replace_partition(AGG_DAILY_CHURN, DAY, churn_rows(30))
    assert rows_of(warehouse, AGG_DAILY_CHURN)["customers_at_start"].tolist() == [30]
