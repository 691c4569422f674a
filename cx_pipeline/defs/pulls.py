"""Pull assets: SQL sources (a helpdesk's replica database) pulled by the pipeline itself.

Each mapping in ``CX_SQL_SOURCES`` becomes an asset ``pull_<mapping file name>`` that, for
each of its days, runs the mapping's query with the day's bounds and writes the day's
canonical drops into the landing folder. The raw assets of the sources it fills depend on
it, so a daily run or a backfill pulls, then reads, then stages. File exports are imported
with ``cx-pipeline import`` instead: a file is not pulled a day at a time.
"""

import dagster as dg

from cx_pipeline.defs.partitions import DAILY, ONE_RUN, partition_days
from cx_pipeline.defs.resources import CxPaths
from cx_pipeline.lib.ingest.mappings import MappingError, SourceMapping, load_mapping, write_drops
from cx_pipeline.settings import SETTINGS


def pull_asset_name(mapping: SourceMapping) -> str:
    return f"pull_{mapping.path.stem}"


def load_sql_sources() -> list[SourceMapping]:
    """The mappings of CX_SQL_SOURCES, checked without connecting (the database may be down
    while Dagster loads the code; the first pull checks the query)."""
    mappings = [load_mapping(path, ask_database=False) for path in SETTINGS.sql_sources]
    for mapping in mappings:
        if "sql" not in mapping.spec["read"]:
            raise MappingError(f"{mapping.path}: read.sql: CX_SQL_SOURCES takes SQL sources only")
    return mappings


def build_pull_asset(mapping: SourceMapping) -> dg.AssetsDefinition:
    @dg.asset(
        name=pull_asset_name(mapping),
        group_name="landing",
        partitions_def=DAILY,
        backfill_policy=ONE_RUN,
        kinds={"sql"},
        description=(
            f"Pulls `{', '.join(mapping.targets)}` from the database in "
            f"`${mapping.spec['read']['sql']['url_env']}` with the query of "
            f"`{mapping.path.name}`, one day at a time, into the landing folder."
        ),
    )
    def pull(context: dg.AssetExecutionContext, paths: CxPaths) -> dg.MaterializeResult:
        days = partition_days(context)
        written = write_drops(
            [mapping], paths.landing, SETTINGS.reporting_timezone, days[0], days[-1]
        ).drops
        # The URL is a secret: only the variable's name goes into metadata.
        return dg.MaterializeResult(
            metadata={"drops_written": written, "mapping": str(mapping.path)}
        )

    return pull


def pulls_by_source(mappings: list[SourceMapping]) -> dict[str, list[str]]:
    """Source name -> the pull assets that fill its landing folder."""
    return {
        source: [pull_asset_name(m) for m in mappings if source in m.targets]
        for source in {target for m in mappings for target in m.targets}
    }


SQL_SOURCES = load_sql_sources()
PULL_ASSETS = [build_pull_asset(mapping) for mapping in SQL_SOURCES]
PULLED_SOURCES = pulls_by_source(SQL_SOURCES)
