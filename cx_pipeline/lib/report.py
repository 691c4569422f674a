"""The CX report: one self-contained HTML file a support or CX lead opens in a browser.

Every chart is drawn by plotly from the marts' Parquet files (DuckDB SQL over them), and
plotly's JavaScript is written into the file once, so the report needs no network to
view. Figures are recomputed from counts where days are combined (a rate from summed
numerators and denominators), as the BI views do.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import pyarrow as pa
from plotly.offline import get_plotlyjs
from pyarrow import feather

from cx_pipeline.lib.store.parquet import file_version, partition_day, window_files

REPORT_FOLDER = "report"
# The report's own kept figures: Arrow files, not Parquet, so no reader of the output takes
# them for a table.
KEPT_SUFFIX = ".arrow"


@dataclass(frozen=True)
class Chart:
    title: str
    figure: go.Figure
    note: str = ""


# The report the pipeline writes with the marts covers the 90 days up to its last day.
REPORT_DAYS = 90


def report_window(end: dt.date, first_day: dt.date) -> tuple[dt.date, dt.date]:
    return max(first_day, end - dt.timedelta(days=REPORT_DAYS - 1)), end


def report_path(output: Path, start: dt.date, end: dt.date) -> Path:
    return output / REPORT_FOLDER / f"cx_report_{start.isoformat()}_{end.isoformat()}.html"


def write_report(output: Path, start: dt.date, end: dt.date) -> Path:
    """Build the report of ``start..end`` from the marts under ``output``; returns its path
    (written to a temporary name and renamed, so a reader never sees half a file)."""
    charts = build_charts(output, start, end)
    path = report_path(output, start, end)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(render(charts, start, end), encoding="utf-8")
    partial.replace(path)
    return path


def build_charts(output: Path, start: dt.date, end: dt.date) -> list[Chart]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")

    def rows(table: str, sql: str) -> pd.DataFrame:
        files = window_files(output / table, start, end)
        return con.sql(sql.format(t=_read_days(files))).df() if files else pd.DataFrame()

    return [
        _band(rows("agg_daily_nps", SURVEY_SQL.format(score="nps", margin="nps_margin_of_error")),
              "NPS (trailing 7 days) with its 95 % margin of error", "NPS", -100, 100),
        _band(rows("agg_daily_csat",
                   SURVEY_SQL.format(score="csat_rate", margin="csat_margin_of_error")),
              "CSAT (trailing 7 days) with its 95 % margin of error", "CSAT", 0, 1,
              percent=True),
        _lines(per_day_kept(con, output, "fct_tickets", PERCENTILES_SQL, start, end),
               "First response and resolution (hours)",
               "hours", note="Median and 90th percentile of the tickets first answered / "
               "first resolved each day."),
        _lines(rows("agg_daily_ticket_activity", SLA_SQL), "SLA attainment", "share",
               percent=True),
        _stacked(rows("agg_daily_backlog", BACKLOG_SQL), "Backlog at the end of each day, by age",
                 "open tickets"),
        _topics(rows("agg_daily_tickets_by_topic", TOPICS_SQL)),
        _lines(rows("agg_daily_churn", CHURN_SQL), "Churn and retention (30 days)", "rate",
               percent=True),
        _cohorts(rows("agg_retention_cohorts", COHORTS_SQL)),
        _lines(rows("agg_daily_repeat_contacts", REPEAT_SQL), "Repeat contacts", "share",
               percent=True, note="Customers with a ticket who had another on the same topic "
               "within the repeat window before it."),
        _stacked(_wide(rows("agg_daily_channel_mix", CHANNEL_SQL), "channel", "tickets"),
                 "Channel mix (tickets per day)", "tickets"),
    ]  # fmt: skip


def _read_days(files: list[str]) -> str:
    return f"read_parquet({files}, hive_partitioning = true)"


def per_day_kept(
    con: duckdb.DuckDBPyConnection, output: Path, table: str, sql: str, start: dt.date,
    end: dt.date,
) -> pd.DataFrame:  # fmt: skip
    """``sql`` over ``table``'s days ``start..end``, for a query whose rows of a day come from
    that day's files alone (``GROUP BY date``). Each day's rows are kept beside the report
    with its files' signatures, and computed again only when a file changed (a rerun, a late
    row restating the day): a daily run's report reads one new day of fct_tickets, not the
    90 days it shows (at a million tickets a day, 135 million rows)."""
    files_of: dict[dt.date, list[str]] = {}
    for file in window_files(output / table, start, end):
        files_of.setdefault(partition_day(Path(file).parent.name), []).append(file)
    if not files_of:
        return pd.DataFrame()
    signature = {day: "|".join(map(_signature, files)) for day, files in files_of.items()}
    kept_path = output / REPORT_FOLDER / f".{table}_{_digest(sql)}{KEPT_SUFFIX}"
    kept = _read_kept(kept_path)
    if kept is not None:
        days, signatures = kept["date"].to_pylist(), kept["signature"].to_pylist()
        valid = [signature.get(day) == sig for day, sig in zip(days, signatures, strict=True)]
        kept = kept.filter(pa.array(valid, pa.bool_()))
    fresh = set() if kept is None else set(kept["date"].to_pylist())
    stale = sorted(day for day in files_of if day not in fresh)
    if stale:
        computed = con.sql(
            sql.format(t=_read_days([f for day in stale for f in files_of[day]]))
        ).to_arrow_table()
        sigs = [signature[day] for day in computed["date"].to_pylist()]
        computed = computed.append_column("signature", pa.array(sigs, pa.string()))
        kept = (
            computed
            if kept is None
            else pa.concat_tables([kept, computed], promote_options="permissive")
        )
        _replace_kept(kept_path, kept, table)
    con.register("kept", kept)
    return con.sql("SELECT * EXCLUDE (signature) FROM kept ORDER BY date").df()


def _read_kept(path: Path) -> pa.Table | None:
    try:
        return feather.read_table(path)
    except (OSError, pa.ArrowInvalid):  # none yet, or unreadable: everything is computed
        return None


def _signature(file: str) -> str:
    return ":".join(map(str, file_version(Path(file))))


_DIGEST_CHARS = 12


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:_DIGEST_CHARS]


def _replace_kept(path: Path, kept: pa.Table, table: str) -> None:
    """Write the kept rows atomically and drop the table's rows of an older query (another
    digest; not another table whose name starts with this one's)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.partial")
    feather.write_feather(kept, partial)
    partial.replace(path)
    for older in path.parent.glob(f".{table}_{'?' * _DIGEST_CHARS}{KEPT_SUFFIX}"):
        if older != path:
            older.unlink(missing_ok=True)


SURVEY_SQL = """SELECT date, {score} AS score, {margin} AS margin FROM {{t}}
WHERE window_days = 7 AND breakdown = 'all' ORDER BY date"""
PERCENTILES_SQL = """SELECT date,
    quantile_cont(first_response_minutes / 60, 0.5)
        FILTER (WHERE CAST(first_response_at AS DATE) = date) AS "first response, median",
    quantile_cont(first_response_minutes / 60, 0.9)
        FILTER (WHERE CAST(first_response_at AS DATE) = date) AS "first response, p90",
    quantile_cont(first_resolution_minutes / 60, 0.5)
        FILTER (WHERE CAST(first_resolved_at AS DATE) = date) AS "resolution, median",
    quantile_cont(first_resolution_minutes / 60, 0.9)
        FILTER (WHERE CAST(first_resolved_at AS DATE) = date) AS "resolution, p90"
FROM {t} GROUP BY date ORDER BY date"""
SLA_SQL = """SELECT date,
    SUM(first_response_sla_met) / NULLIF(SUM(tickets_first_responded), 0)
        AS "first response within SLA",
    SUM(resolution_sla_met) / NULLIF(SUM(tickets_resolved), 0) AS "resolution within SLA"
FROM {t} GROUP BY date ORDER BY date"""
BACKLOG_SQL = """SELECT date,
    SUM(open_tickets - open_over_12h) AS "up to 12 h",
    SUM(open_over_12h - open_over_24h) AS "12-24 h",
    SUM(open_over_24h - open_over_72h) AS "24-72 h",
    SUM(open_over_72h) AS "over 72 h"
FROM {t} GROUP BY date ORDER BY date"""
TOPICS_SQL = """SELECT date, topic, tickets_created FROM {t} ORDER BY date, topic"""
CHURN_SQL = """SELECT date, churn_rate_30d AS "churn rate (30 days)",
    1 - churn_rate_30d AS "retention (30 days)" FROM {t} ORDER BY date"""
COHORTS_SQL = """SELECT cohort_month, months_since_signup, share_active FROM {t}
WHERE date = (SELECT MAX(date) FROM {t}) ORDER BY cohort_month, months_since_signup"""
REPEAT_SQL = """SELECT date, repeat_contact_rate AS "repeat contact rate" FROM {t}
WHERE topic = '(all)' ORDER BY date"""
CHANNEL_SQL = """SELECT date, channel, tickets FROM {t} WHERE window_days = 1
ORDER BY date, channel"""


def _figure(title: str, axis: str, percent: bool = False) -> go.Figure:
    figure = go.Figure()
    figure.update_layout(
        title=title, height=360, margin={"l": 60, "r": 20, "t": 50, "b": 40},
        yaxis_title=axis, legend={"orientation": "h", "y": -0.15}, template="plotly_white",
    )  # fmt: skip
    if percent:
        figure.update_yaxes(tickformat=".0%")
    return figure


def _band(
    rows: pd.DataFrame, title: str, axis: str, low: float, high: float, percent: bool = False
) -> Chart:
    """The score with its margin of error as a band (cut at the scale's ends)."""
    figure = _figure(title, axis, percent)
    if not rows.empty:
        upper = (rows["score"] + rows["margin"]).clip(upper=high)
        lower = (rows["score"] - rows["margin"]).clip(lower=low)
        figure.add_scatter(x=rows["date"], y=upper, mode="lines", line={"width": 0},
                           showlegend=False, hoverinfo="skip")  # fmt: skip
        figure.add_scatter(x=rows["date"], y=lower, mode="lines", fill="tonexty",
                           line={"width": 0}, name="95 % margin",
                           fillcolor="rgba(31,119,180,0.2)")  # fmt: skip
        figure.add_scatter(x=rows["date"], y=rows["score"], mode="lines", name=axis,
                           line={"width": 2})  # fmt: skip
    return Chart(title, figure)


def _lines(
    rows: pd.DataFrame, title: str, axis: str, percent: bool = False, note: str = ""
) -> Chart:
    figure = _figure(title, axis, percent)
    for column in rows.columns.drop("date", errors="ignore"):
        figure.add_scatter(x=rows["date"], y=rows[column], name=column, mode="lines")
    return Chart(title, figure, note)


def _stacked(rows: pd.DataFrame, title: str, axis: str) -> Chart:
    figure = _figure(title, axis)
    figure.update_layout(barmode="stack")
    for column in rows.columns.drop("date", errors="ignore"):
        figure.add_bar(x=rows["date"], y=rows[column], name=str(column))
    return Chart(title, figure)


def _wide(rows: pd.DataFrame, column: str, values: str) -> pd.DataFrame:
    """One column per value of ``column`` (a channel), by date: what a stacked chart draws."""
    if rows.empty:
        return rows
    return rows.pivot_table(index="date", columns=column, values=values, fill_value=0).reset_index()


def _topics(rows: pd.DataFrame) -> Chart:
    """Tickets created per week and topic, with the topics that moved most between the
    last 7 days and the 7 before named."""
    figure = _figure("Tickets by topic (per week)", "tickets")
    figure.update_layout(barmode="stack")
    note = ""
    if not rows.empty:
        rows = rows.assign(date=pd.to_datetime(rows["date"]))
        week = pd.Grouper(key="date", freq="W-MON", label="left", closed="left")
        weekly = rows.groupby([week, "topic"])["tickets_created"].sum()
        for topic, series in weekly.unstack(fill_value=0).items():
            figure.add_bar(x=series.index, y=series.to_numpy(), name=str(topic))
        last = rows["date"].max()
        recent = rows[rows["date"] > last - pd.Timedelta(days=7)]
        before = rows[(rows["date"] <= last - pd.Timedelta(days=7))
                      & (rows["date"] > last - pd.Timedelta(days=14))]  # fmt: skip
        change = (
            recent.groupby("topic")["tickets_created"].sum()
            .sub(before.groupby("topic")["tickets_created"].sum(), fill_value=0)
            .sort_values()
        )  # fmt: skip
        movers = [f"{t} {int(n):+d}" for t, n in [*change.tail(3)[::-1].items(),
                                                   *change.head(3).items()] if n]  # fmt: skip
        note = "Biggest movers, last 7 days against the 7 before: " + (
            ", ".join(dict.fromkeys(movers)) or "none"
        )
    return Chart("Tickets by topic", figure, note)


def _cohorts(rows: pd.DataFrame) -> Chart:
    figure = _figure("Retention by signup cohort (share still active)", "cohort")
    if not rows.empty:
        grid = rows.pivot_table(
            index="cohort_month", columns="months_since_signup", values="share_active"
        )
        figure.add_heatmap(
            z=grid.to_numpy(), x=[str(c) for c in grid.columns],
            y=[str(i) for i in grid.index], colorscale="Blues", zmin=0, zmax=1,
        )  # fmt: skip
        figure.update_xaxes(title="months since signup")
    return Chart("Retention cohorts", figure)


def render(charts: list[Chart], start: dt.date, end: dt.date) -> str:
    """The page: plotly's script once, then one block per chart."""
    blocks = []
    for number, chart in enumerate(charts):
        div = pio.to_html(
            chart.figure, include_plotlyjs=False, full_html=False, div_id=f"chart-{number}"
        )
        note = f'<p class="note">{html.escape(chart.note)}</p>' if chart.note else ""
        blocks.append(f'<section class="chart">{div}{note}</section>')
    return PAGE.format(
        start=start, end=end, plotly=get_plotlyjs(), charts="\n".join(blocks), count=len(charts)
    )


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>CX report {start} .. {end}</title>
<script>
// Any script error is recorded, so a headless browser (and the report's test) can see it.
window.reportErrors = [];
window.addEventListener("error", function (e) {{ window.reportErrors.push(String(e.message)); }});
</script>
<script>{plotly}</script>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1100px; color: #222; }}
.chart {{ margin-bottom: 28px; }} .note {{ color: #555; font-size: 14px; margin: 4px 12px; }}
</style></head>
<body data-charts="{count}">
<h1>Customer experience, {start} .. {end}</h1>
<p class="note">Built by cx-pipeline from its daily marts. Rates are recomputed from counts.</p>
{charts}
<script>
// Once every chart has drawn: how many did, and any script error, for headless checks.
window.addEventListener("load", function () {{
  setTimeout(function () {{
    document.body.setAttribute("data-drawn",
      String(document.querySelectorAll(".js-plotly-plot .main-svg").length > 0
        ? document.querySelectorAll(".js-plotly-plot").length : 0));
    document.body.setAttribute("data-errors", JSON.stringify(window.reportErrors));
  }}, 0);
}});
</script>
</body></html>
"""
