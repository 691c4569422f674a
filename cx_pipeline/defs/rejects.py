"""The stg_rejects asset: the quarantined rows of each day, counted by source and rule.

The staging assets write the rows themselves (each its own slice of the day, with file,
row, rule and raw row); this asset reads them back per run to show, on its page in the UI,
how many rows each rule set aside on which day.
"""

from collections.abc import Iterator

import dagster as dg

from cx_pipeline.defs.days import DayResults
from cx_pipeline.defs.metadata import table_definition_metadata
from cx_pipeline.defs.partitions import DAILY, ONE_RUN, partition_days
from cx_pipeline.defs.resources import CxPaths
from cx_pipeline.lib.headlines import markdown_table
from cx_pipeline.lib.ingest.sources import SOURCES
from cx_pipeline.lib.quality import rejects_by_rule
from cx_pipeline.lib.store.parquet import read_window
from cx_pipeline.lib.store.tables import STG_REJECTS


@dg.asset(
    name=STG_REJECTS.name,
    group_name="staging",
    deps=[source.staged_table for source in SOURCES],
    partitions_def=DAILY,
    backfill_policy=ONE_RUN,
    kinds={"parquet"},
    description="Rows quarantined by staging (table stg_rejects), counted per day, source and "
    "rule. `cx-pipeline rejects --day D` prints the rows themselves.",
    metadata=table_definition_metadata(STG_REJECTS),
)
def stg_rejects(
    context: dg.AssetExecutionContext, paths: CxPaths
) -> Iterator[dg.MaterializeResult | dg.AssetCheckEvaluation]:
    days = partition_days(context)
    rows = read_window(paths.output, STG_REJECTS.name, STG_REJECTS.arrow_schema, days[0], days[-1])
    by_day = dict(tuple(rows.groupby("date")))
    results = DayResults(context)
    for day in days:
        of_day = by_day.get(day, rows.iloc[:0])
        counts = rejects_by_rule(of_day)
        results.counted(
            STG_REJECTS.name, day, len(of_day),
            rejects_by_rule=dg.MetadataValue.md(
                markdown_table(counts.head(30)) if len(counts) else "no rows rejected"
            ),
        )  # fmt: skip
    yield from results.results([STG_REJECTS.name])
