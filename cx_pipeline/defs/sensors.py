"""Late data: sensors that rerun days whose drops arrived or changed, or that late rows
in later drops restate.

A drop that lands after its day was processed (or is replaced by a corrected
export) triggers one run of ``cx_daily`` over that day and the
``CX_LATE_RERUN_DAYS`` days after it (default 7), since later days' marts read
earlier staged days. The run never goes past the newest day every source has a
drop for. The first evaluation only records what is there.

A row that belongs to an earlier day than the drop it came in (a ticket created at 23:50
that the next day's export holds) is counted when its day is rerun: a mart day also reads
the ``CX_LATE_ROW_DAYS`` drops after it. ``late_rows_sensor`` asks for that rerun when a
newly staged drop holds such rows.
"""

import datetime as dt
import hashlib
import json

import dagster as dg

from cx_pipeline.defs.partitions import RANGE_END_TAG, RANGE_START_TAG
from cx_pipeline.defs.resources import CxPaths
from cx_pipeline.defs.schedules import DAILY_JOB
from cx_pipeline.lib.ingest.landing import (
    changed_days,
    complete_through,
    late_row_range,
    scan_landing,
    staged_contents,
)
from cx_pipeline.lib.ingest.sources import SOURCES
from cx_pipeline.settings import SETTINGS


@dg.sensor(
    job=DAILY_JOB,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Reruns the days (and the CX_LATE_RERUN_DAYS after) whose drops are new or "
    "changed in the landing folder.",
)
def late_drops_sensor(
    context: dg.SensorEvaluationContext, paths: CxPaths
) -> dg.SensorResult | dg.SkipReason:
    sources = [source.name for source in SOURCES]
    # Partitions exist up to today; a drop named for a later or earlier day is reported.
    last_partition = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    scan = scan_landing(paths.landing, sources, SETTINGS.start_date, last_partition)
    if scan.unrecognised:
        context.log.warning(
            f"{len(scan.unrecognised)} landing file(s) are not drops of a partition day and "
            f"are ignored: {scan.unrecognised[:10]}"
        )
    cursor = json.dumps(scan.signatures, sort_keys=True)
    if context.cursor is None:
        return dg.SensorResult(cursor=cursor, skip_reason="first look: recorded current drops")
    days = changed_days(json.loads(context.cursor), scan.signatures)
    last_complete = complete_through(scan.signatures, sources)
    if not days or last_complete is None:
        return dg.SensorResult(cursor=cursor, skip_reason="no new or changed drops")
    start = days[0]
    end = min(max(days[-1], start) + dt.timedelta(days=SETTINGS.late_rerun_days), last_complete)
    if end < start:
        return dg.SensorResult(cursor=cursor, skip_reason=f"drops for {start} are incomplete")
    context.log.info(
        f"drops new or changed for {[d.isoformat() for d in days]}: rerun {start}..{end}"
    )
    return dg.SensorResult(run_requests=[_rerun("late-drops", start, end, cursor)], cursor=cursor)


def _rerun(reason: str, start: dt.date, end: dt.date, cursor: str) -> dg.RunRequest:
    """One run of cx_daily over start..end (its run key is unique to what was seen)."""
    return dg.RunRequest(
        run_key=f"{reason}:{start}:{end}:{hashlib.sha1(cursor.encode()).hexdigest()[:12]}",
        tags={RANGE_START_TAG: start.isoformat(), RANGE_END_TAG: end.isoformat()},
    )


@dg.sensor(
    job=DAILY_JOB,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Restates the days that staged drops hold late rows of (a ticket created, an "
    "event or an answer before the drop's day): reruns from that day (at most "
    "CX_LATE_ROW_DAYS back) through the drop's day.",
)
def late_rows_sensor(
    context: dg.SensorEvaluationContext, paths: CxPaths
) -> dg.SensorResult | dg.SkipReason:
    contents = staged_contents(paths.output, SETTINGS.reporting_timezone)
    cursor = json.dumps(contents, sort_keys=True)
    if context.cursor is None:
        return dg.SensorResult(cursor=cursor, skip_reason="first look: recorded staged drops")
    days = late_row_range(json.loads(context.cursor), contents, SETTINGS.late_row_days)
    if days is None:
        return dg.SensorResult(cursor=cursor, skip_reason="no late rows in new staged drops")
    start, end = days
    context.log.info(f"staged drops hold rows of earlier days: restate {start}..{end}")
    return dg.SensorResult(run_requests=[_rerun("late-rows", start, end, cursor)], cursor=cursor)
