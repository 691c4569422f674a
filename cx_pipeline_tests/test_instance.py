"""The embedded instance's pooled event log stores and reads back what Dagster's own does."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from cx_pipeline.defs.instance import PooledSqliteEventLogStorage, instance_yaml

TABLE = dg.AssetKey("agg_daily_churn")


def materialize(instance: dg.DagsterInstance, day: str) -> None:
    instance.report_runless_asset_event(
        dg.AssetMaterialization(TABLE, partition=day, tags={"cx/source": "test"})
    )
    instance.report_runless_asset_event(
        dg.AssetCheckEvaluation(asset_key=TABLE, check_name="schema_valid", passed=True)
    )


def test_events_are_stored_and_read_back_before_and_after_a_wipe(tmp_path: Path) -> None:
    (tmp_path / "dagster.yaml").write_text(instance_yaml(tmp_path), encoding="utf-8")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
        materialize(instance, "2026-01-01")
        materialize(instance, "2026-01-02")
        assert instance.get_materialized_partitions(TABLE) == {"2026-01-01", "2026-01-02"}
        # Tables looked up once are remembered; a wipe forgets them with the files.
        instance.wipe()
        assert instance.get_materialized_partitions(TABLE) == set()
        materialize(instance, "2026-01-03")
        assert instance.get_materialized_partitions(TABLE) == {"2026-01-03"}
        latest = instance.get_latest_materialization_event(TABLE)
        assert latest is not None and latest.tags == {"cx/source": "test"}
