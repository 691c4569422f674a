"""The ``cx-pipeline`` command: demo, backfill, sample data, DDL."""

from __future__ import annotations

import argparse
import datetime as dt
import fcntl
import os
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

from cx_pipeline.defs.partitions import RANGE_END_TAG, RANGE_START_TAG
from cx_pipeline.defs.resources import data_dir, landing_dir
from cx_pipeline.lib.ingest.sources import SOURCES, SOURCES_BY_NAME
from cx_pipeline.lib.store.parquet import PARTITION_COLUMN
from cx_pipeline.settings import PROJECT_ROOT

# The progress bar says how far a backfill is; Dagster's console shows warnings up.
# Warnings on the console; a failed step is told in one line by run_backfill (the run's
# whole log, traceback included, stays in the instance and the UI).
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
BACKFILL_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
# The demo's days are small: a step's time is mostly Python on one core, so independent
# steps side by side (each in a process of its own) finish sooner on two cores. Bigger
# days keep both cores busy in DuckDB within one step, so the default stays one process.
DEMO_PROCESSES = 2


def main(argv: list[str] | None = None) -> int:
    # Dagster flags single-run backfills (beta) and partitioned checks (preview); noise to users.
    warnings.filterwarnings("ignore", message=".*currently in (beta|preview).*")
    parser = argparse.ArgumentParser(prog="cx-pipeline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="generate sample drops, backfill them, summarise")
    demo.add_argument("--days", type=int, default=90)

    backfill = commands.add_parser("backfill", help="materialise every asset over a date range")
    backfill.add_argument("--start", type=dt.date.fromisoformat, required=True)
    backfill.add_argument("--end", type=dt.date.fromisoformat, required=True)
    backfill.add_argument(
        "--chunk-days", type=int, default=10, help="days per Dagster run (default 10)"
    )
    backfill.add_argument(
        "--select", default=None,
        help="only these assets (comma-separated names, e.g. the ticket assets when the "
        "source is an event log alone); default: every asset",
    )  # fmt: skip

    generate = commands.add_parser("generate", help="write deterministic sample drops")
    generate.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2026, 1, 1))
    generate.add_argument("--days", type=int, default=90)
    generate.add_argument("--tickets-per-day", type=float, default=300.0)
    generate.add_argument("--seed", type=int, default=20260101)
    generate.add_argument("--landing", type=Path, default=None)

    convert = commands.add_parser(
        "import", help="convert an export (source mapping YAML) into canonical daily drops"
    )
    convert.add_argument(
        "mapping", type=Path, nargs="+",
        help="source mapping files; mappings that belong together (tickets and their events) "
        "go in one command, so their drops cover the same days",
    )  # fmt: skip
    convert.add_argument("--landing", type=Path, default=None)
    convert.add_argument("--start", type=dt.date.fromisoformat, default=None)
    convert.add_argument("--end", type=dt.date.fromisoformat, default=None)

    validate = commands.add_parser(
        "validate",
        help="stage one file as the pipeline would and print its rejects; writes nothing",
    )
    validate.add_argument("file", type=Path)
    validate.add_argument("--source", required=True, choices=[s.name for s in SOURCES])

    rejects = commands.add_parser("rejects", help="the rows quarantined on a day, with reasons")
    rejects.add_argument("--day", type=dt.date.fromisoformat, required=True)
    rejects.add_argument("--source", default=None, choices=[s.name for s in SOURCES])

    status = commands.add_parser(
        "status", help="days with missing drops, outputs not computed, changed drops, failed runs"
    )
    status.add_argument("--start", type=dt.date.fromisoformat, default=None)
    status.add_argument("--end", type=dt.date.fromisoformat, default=None)

    summary = commands.add_parser("summary", help="headline figures of a date range")
    summary.add_argument("--start", type=dt.date.fromisoformat, required=True)
    summary.add_argument("--end", type=dt.date.fromisoformat, required=True)

    report = commands.add_parser("report", help="build the HTML CX report of a date range")
    report.add_argument("--start", type=dt.date.fromisoformat, required=True)
    report.add_argument("--end", type=dt.date.fromisoformat, required=True)

    ddl = commands.add_parser("ddl", help="print or write the warehouse DDL (sql/)")
    ddl.add_argument("--dialect", choices=["duckdb", "postgresql"], default=None)
    ddl.add_argument("--write", action="store_true", help="rewrite sql/<dialect>/tables.sql")

    args = parser.parse_args(argv)
    prepare_dagster_home()
    if args.command == "demo":
        return run_demo(args.days)
    if args.command == "backfill":
        return run_backfill(args.start, args.end, args.chunk_days, args.select)
    if args.command == "generate":
        return run_generate(args)
    if args.command == "import":
        return run_import(args)
    if args.command == "validate":
        return run_validate(args.file, args.source)
    if args.command == "rejects":
        return run_rejects(args.day, args.source)
    if args.command == "status":
        return run_status(args.start, args.end)
    if args.command == "summary":
        return run_summary(args.start, args.end)
    if args.command == "report":
        return run_report(args.start, args.end)
    return run_ddl(args.dialect, args.write)


def run_import(args: argparse.Namespace) -> int:
    from cx_pipeline.lib.ingest.mappings import MappingError, load_mapping, write_drops
    from cx_pipeline.settings import SETTINGS

    landing = args.landing or landing_dir()
    try:
        mappings = [load_mapping(path) for path in args.mapping]
        written = write_drops(mappings, landing, SETTINGS.reporting_timezone, args.start, args.end)
    except MappingError as error:
        print(f"cx-pipeline import: {error}", file=sys.stderr)
        return 2
    sources = sorted({target for mapping in mappings for target in mapping.targets})
    if args.start is None or args.end is None:
        print(
            f"cx-pipeline import: warning: no --start/--end; the drops cover {written.first} .. "
            f"{written.last}, the days of these exports' rows. Import the sources that belong "
            "together in one command or with the same --start/--end, or their days will not "
            "line up (a day with tickets but no events drop is a missing drop)",
            file=sys.stderr,
        )
    print(f"wrote {written.drops} drops of {', '.join(sources)} into {landing}")
    return 0


def prepare_dagster_home() -> Path:
    """The Dagster instance runs are recorded in (``$DAGSTER_HOME``, default data/dagster_home)."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(data_dir() / "dagster_home")))
    home.mkdir(parents=True, exist_ok=True)
    # Two commands started at once on a fresh instance would both create its storage
    # ("table runs already exists"): the first sets it up while the other waits.
    with (home / ".setup.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        import dagster as dg

        from cx_pipeline.defs.instance import instance_yaml

        settings = home / "dagster.yaml"
        if not settings.exists():
            settings.write_text(instance_yaml(home), encoding="utf-8")

        with dg.DagsterInstance.from_config(str(home)) as instance:
            instance.get_runs(limit=1)  # creates the run, event and schedule storage
    return home


def run_generate(args: argparse.Namespace) -> int:
    from cx_pipeline.lib.ingest.sample_data import SampleConfig, generate, write_sample_drops

    landing = args.landing or landing_dir()
    config = SampleConfig(
        start=args.start, days=args.days, tickets_per_day=args.tickets_per_day, seed=args.seed
    )
    files = write_sample_drops(generate(config), landing, config)
    print(f"wrote {files} drop files under {landing}")
    return 0


def run_backfill(start: dt.date, end: dt.date, chunk_days: int, select: str | None = None) -> int:
    """Run the cx_daily job (every asset, or the ``select``ed ones) for ``start..end``, a
    chunk of days per Dagster run, in order; with CX_MAX_PROCESSES > 1 independent steps run
    side by side, each in its own process. The bar moves as each table's day is written."""
    # One "planned" event per asset and run instead of one per asset and day (a tenth of a
    # small day's time): a failed run's days then show as missing, not failed, in the UI's
    # partition bars; the run itself is failed, and `status` and this command say which.
    os.environ.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "true")
    import dagster as dg

    from cx_pipeline.definitions import ASSETS, daily_job
    from cx_pipeline.defs.resources import output_dir
    from cx_pipeline.lib.store.tables import TABLES_BY_NAME

    if end < start:
        raise SystemExit(f"--end {end} is before --start {start}")
    chosen = whole_marts(select.split(",")) if select else None
    selection = [dg.AssetKey(name) for name in chosen] if chosen else None
    tables = [
        name for asset in ASSETS for name in (key.to_user_string() for key in asset.keys)
        if name in TABLES_BY_NAME and (chosen is None or name in chosen)
    ]  # fmt: skip
    instance = dg.DagsterInstance.get()
    # Rebuilt by name in each step's process when steps run in processes of their own.
    job = dg.reconstructable(daily_job)
    with DayProgress(output_dir(), tables, (end - start).days + 1) as progress:
        chunk_start = start
        while chunk_start <= end:
            chunk_end = min(end, chunk_start + dt.timedelta(days=chunk_days - 1))
            progress.run_started(chunk_start, chunk_end)
            result = dg.execute_job(
                job, instance=instance, asset_selection=selection, raise_on_error=False,
                tags={RANGE_START_TAG: chunk_start.isoformat(),
                      RANGE_END_TAG: chunk_end.isoformat()},
                run_config=BACKFILL_RUN_CONFIG,
            )  # fmt: skip
            progress.run_done()
            if not result.success:
                progress.close()
                print(
                    f"backfill failed in {chunk_start}..{chunk_end}: {_first_failure(result)} "
                    f"(run {result.run_id}; its whole log is in the Dagster UI)",
                    file=sys.stderr,
                )
                return 1
            chunk_start = chunk_end + dt.timedelta(days=1)
    return 0


class DayProgress:
    """A progress bar in days that moves as each table's day is written: a thread watches
    the tables' day folders in the Parquet root (a write renames a file into its folder),
    so it follows steps run in other processes or on Celery workers too. Each table-day is
    1/tables of a day."""

    def __init__(self, output: Path, tables: list[str], days: int, poll_seconds: float = 0.5):
        from tqdm import tqdm

        self._output, self._tables, self._poll = output, tables, poll_seconds
        self._bar = tqdm(total=days, unit="day", desc="backfill", file=sys.stderr,
                         bar_format="{l_bar}{bar}| {n:.1f}/{total} days [{elapsed}<{remaining}]"
                         "{postfix}")  # fmt: skip
        self._shown = 0.0
        self._before = 0  # days of the runs already finished
        self._run: tuple[list[dt.date], float] = ([], 0.0)  # the current run's days, start
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._seen: set[tuple[dt.date, str]] = set()  # (day, table)s written this backfill
        self._thread = threading.Thread(target=self._follow, daemon=True)

    def __enter__(self) -> DayProgress:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def run_started(self, start: dt.date, end: dt.date) -> None:
        days = [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]
        with self._lock:
            self._run = (days, time.time())

    def run_done(self) -> None:
        """The run ended: its days count whole, whatever the thread has seen so far."""
        with self._lock:
            self._before += len(self._run[0])
            self._run = ([], 0.0)
            self._show(self._before)

    def _show(self, position: float) -> None:
        if position > self._shown:
            self._bar.update(position - self._shown)
            self._shown = position

    def _written_since(self, days: list[dt.date], since: float) -> list[tuple[dt.date, str]]:
        """The (day, table)s of ``days`` whose folder changed since ``since``: one listing per
        table, and a stat only for day folders that exist and were not seen written before
        (a poll over 90 days x 29 tables stat-ing every pair took 25 ms of the run's CPU)."""
        folders = {f"{PARTITION_COLUMN}={day.isoformat()}": day for day in days}
        for table in self._tables:
            try:
                entries = list(os.scandir(self._output / table))
            except FileNotFoundError:
                continue
            for entry in entries:
                day = folders.get(entry.name)
                if day is None or (day, table) in self._seen:
                    continue
                if entry.stat().st_mtime >= since:
                    self._seen.add((day, table))
        run_days = set(days)
        return [pair for pair in self._seen if pair[0] in run_days]

    def _follow(self) -> None:
        while not self._stop.wait(self._poll):
            with self._lock:
                days, since = self._run
            if not days or not self._tables:
                continue
            done = self._written_since(days, since)
            with self._lock:
                if self._run == (days, since):
                    self._show(self._before + len(done) / len(self._tables))
            if done:
                day, table = max(done)
                self._bar.set_postfix_str(f"{day} {table}")

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._bar.close()


def _first_failure(result: object) -> str:
    """The failed step and the first line of its error: the message our assets raise names
    the file, day and rule, so the traceback adds nothing a data engineer needs here."""
    failures = result.get_step_failure_events()  # type: ignore[attr-defined]
    if not failures:
        return "the run failed before any step"
    for event in result.all_events:  # type: ignore[attr-defined]
        check = event.event_specific_data
        failed = event.event_type_value == "ASSET_CHECK_EVALUATION" and not check.passed
        if failed and check.severity.value == "ERROR":  # the day's check says what it found
            asset = check.asset_key.to_user_string()
            return f"{asset} {check.partition}, check {check.check_name}: {check.description}"
    error = failures[0].step_failure_data.error
    while (
        error is not None
        and error.cause is not None
        and "Error occurred while" in (error.message or "")
    ):
        error = error.cause  # Dagster's wrapper: the user code's own error is the cause
    lines = (error.message if error is not None else "").strip().splitlines()
    first = lines[0] if lines else "failed"
    kind, _, text = first.partition(": ")  # "package.module.DropError: <message>"
    return f"{failures[0].step_key}: {text if '.' in kind and ' ' not in kind else first}"


def whole_marts(names: list[str]) -> list[str]:
    """The selected assets, with every table of a mart one of whose tables is selected:
    a mart computes its tables together (Dagster refuses a part of it). Says what it added."""
    from cx_pipeline.definitions import ASSETS

    chosen = list(dict.fromkeys(name.strip() for name in names if name.strip()))
    for definition in ASSETS:
        tables = [key.to_user_string() for key in definition.keys]
        picked = [name for name in tables if name in chosen]
        added = [name for name in tables if name not in chosen]
        if picked and added:
            print(
                f"note: {', '.join(picked)} is computed with {', '.join(added)} "
                f"({definition.node_def.name}): selected them too",
                file=sys.stderr,
            )
            chosen += added
    return chosen


def run_demo(days: int) -> int:
    from cx_pipeline.defs.resources import default_resources
    from cx_pipeline.lib.ingest.sample_data import SampleConfig, generate, write_sample_drops
    from cx_pipeline.lib.report import report_path, report_window
    from cx_pipeline.lib.summary import summarise
    from cx_pipeline.settings import SETTINGS

    resources = default_resources()
    landing = Path(resources["paths"].landing_dir)  # type: ignore[attr-defined]
    config = SampleConfig(start=SETTINGS.start_date, days=days)
    print(f"Generating {days} days of sample drops from {config.start} into {landing} ...")
    write_sample_drops(generate(config), landing, config)
    end = config.start + dt.timedelta(days=days - 1)
    processes = os.environ.get("CX_MAX_PROCESSES") or str(min(DEMO_PROCESSES, os.cpu_count() or 1))
    print(f"Backfilling {config.start}..{end} (CX_MAX_PROCESSES={processes}) ...")
    # The backfill command a user would run, in a process of its own: settings are read
    # when the definitions load. One run for the whole demo: a run's fixed cost is paid once.
    backfill = [
        sys.executable, "-m", "cx_pipeline.cli", "backfill", "--start", config.start.isoformat(),
        "--end", end.isoformat(), "--chunk-days", str(days),
    ]  # fmt: skip
    if subprocess.run(backfill, env={**os.environ, "CX_MAX_PROCESSES": processes}).returncode:
        return 1
    paths, warehouse = resources["paths"], resources["warehouse"]
    print(summarise(warehouse.connect(), paths.output, end))  # type: ignore[attr-defined]
    report = report_path(paths.output, *report_window(end, config.start))  # type: ignore[attr-defined]
    print(f"Report:     {report} (open it in a browser; it needs no network)")
    return 0


def run_validate(path: Path, source_name: str) -> int:
    """Stage ``path`` as a drop of ``source_name`` with the pipeline's rules and settings;
    print what would be quarantined. Exit 0: every row valid; 1: rows rejected or the file
    unreadable."""
    from cx_pipeline.defs.resources import staging_policy_from_env
    from cx_pipeline.lib.ingest.drops import DropError, drop_day, read_drop
    from cx_pipeline.lib.ingest.staging import MissingColumnsError, stage_drop

    policy = staging_policy_from_env()
    day = drop_day(path) or dt.date.today()  # a drop's name gives its day
    try:
        raw = read_drop(path, policy.encoding)
        staged = stage_drop(
            raw.to_pandas(), SOURCES_BY_NAME[source_name], str(path), policy.naive_timezone,
            policy.plausible_times(day),
        )  # fmt: skip
    except (DropError, MissingColumnsError, FileNotFoundError) as error:
        print(f"cx-pipeline validate: {error}", file=sys.stderr)
        return 1
    for message in staged.rejects["message"]:
        print(message)
    print(
        f"{path}: {staged.rows_read} rows, {len(staged.rows)} valid, {len(staged.rejects)} "
        f"rejected ({staged.reject_share:.1%}), {staged.duplicates_removed} duplicates, "
        f"{staged.lines_swallowed} lines swallowed; nothing written",
        file=sys.stderr,
    )
    return 1 if len(staged.rejects) or staged.lines_swallowed else 0


def run_rejects(day: dt.date, source: str | None) -> int:
    """Print the day's quarantined rows (stg_rejects) as ``file row N: column: rule``."""
    from cx_pipeline.defs.resources import output_dir
    from cx_pipeline.lib.store.parquet import read_window
    from cx_pipeline.lib.store.tables import STG_REJECTS

    rows = read_window(output_dir(), STG_REJECTS.name, STG_REJECTS.arrow_schema, day, day)
    if source:
        rows = rows[rows["source"] == source]
    for message in rows.sort_values(["source", "file", "row_number"])["message"]:
        print(message)
    print(f"{len(rows)} rejected row(s) on {day}", file=sys.stderr)
    return 0


def run_status(start: dt.date | None, end: dt.date | None) -> int:
    """Days that need attention, from the folders and the run history. Exit 1 if any."""
    import dagster as dg

    from cx_pipeline.defs.resources import output_dir
    from cx_pipeline.lib.status import day_status, days
    from cx_pipeline.lib.store.tables import MART_TABLES, STAGED_TABLES
    from cx_pipeline.settings import SETTINGS

    landing, output = landing_dir(), output_dir()
    start = start or SETTINGS.start_date
    end = end or _last_drop_day(landing) or start
    tables = [spec.name for spec in (*STAGED_TABLES.values(), *MART_TABLES)]
    sources = [source.name for source in SOURCES]
    failed = _failed_days(dg.DagsterInstance.get())
    attention = 0
    for day in days(start, end):
        status = day_status(landing, output, sources, tables, day)
        problems = [
            f"missing drop(s): {', '.join(status.missing_drops)}" if status.missing_drops else "",
            f"drop(s) changed since the day ran: {', '.join(status.stale)}" if status.stale else "",
            f"not computed: {len(status.not_computed)} table(s), e.g. {status.not_computed[0]}"
            if status.not_computed else "",
            f"latest run failed: {failed[day]}" if day in failed else "",
        ]  # fmt: skip
        problems = [p for p in problems if p]
        if problems:
            attention += 1
            print(f"{day}: " + "; ".join(problems))
    print(f"{start} .. {end}: {attention} day(s) need attention", file=sys.stderr)
    return 1 if attention else 0


def _last_drop_day(landing: Path) -> dt.date | None:
    from cx_pipeline.lib.ingest.drops import drop_day

    found = [d for path in landing.glob("*/*") if (d := drop_day(path)) is not None]
    return max(found) if found else None


def _failed_days(instance: object) -> dict[dt.date, str]:
    """Day -> run id, for days whose latest run (by start) failed."""
    import dagster as dg

    from cx_pipeline.lib.status import days

    latest: dict[dt.date, object] = {}
    for run in reversed(instance.get_runs(limit=500)):  # type: ignore[attr-defined]
        tags = run.tags
        first = tags.get(RANGE_START_TAG) or tags.get("dagster/partition")
        last = tags.get(RANGE_END_TAG) or tags.get("dagster/partition")
        if not first or not last:
            continue
        for day in days(dt.date.fromisoformat(first), dt.date.fromisoformat(last)):
            latest[day] = run
    return {
        day: run.run_id  # type: ignore[attr-defined]
        for day, run in latest.items()
        if run.status == dg.DagsterRunStatus.FAILURE  # type: ignore[attr-defined]
    }


def run_summary(start: dt.date, end: dt.date) -> int:
    from cx_pipeline.defs.resources import default_resources
    from cx_pipeline.lib.summary import summarise

    if end < start:
        print(f"cx-pipeline summary: --end {end} is before --start {start}", file=sys.stderr)
        return 2
    resources = default_resources()
    paths, warehouse = resources["paths"], resources["warehouse"]
    print(summarise(warehouse.connect(), paths.output, end, start))  # type: ignore[attr-defined]
    return 0


def run_report(start: dt.date, end: dt.date) -> int:
    from cx_pipeline.defs.resources import output_dir
    from cx_pipeline.lib.report import write_report

    if end < start:
        print(f"cx-pipeline report: --end {end} is before --start {start}", file=sys.stderr)
        return 2
    print(write_report(output_dir(), start, end))
    return 0


def run_ddl(dialect: str | None, write: bool) -> int:
    from cx_pipeline.lib.store.tables import DIALECTS, ddl_script
    from cx_pipeline.lib.store.views import views_script

    if write:
        path = PROJECT_ROOT / "sql" / "views.sql"
        path.write_text(views_script(), encoding="utf-8")
        print(f"wrote {path}")

    for name in [dialect] if dialect else list(DIALECTS):
        script = ddl_script(name)
        if write:
            path = PROJECT_ROOT / "sql" / name / "tables.sql"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(script, encoding="utf-8")
            print(f"wrote {path}")
        else:
            print(script)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
