"""Staging: type a drop's text rows, validate them, set bad rows aside, remove duplicates.

pandas (and DuckDB to de-duplicate a large drop), no Dagster. Every row of a drop ends up
in exactly one place: the staged rows, the rejects (with the column, the rule and a
readable message), or counted as an older duplicate of a row that is kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa

from cx_pipeline.lib.ingest.drops import BOOKKEEPING, MALFORMED, RAW_TEXT, ROW_NUMBER
from cx_pipeline.lib.ingest.sources import Source
from cx_pipeline.lib.metrics.sql import last_of_each

_REJECT_COLUMNS = ["source", "file", "row_number", "columns", "rules", "message", "raw_row"]


class MissingColumnsError(ValueError):
    """A drop lacks required columns: nothing of it can be staged."""


@dataclass(frozen=True)
class StagedDrop:
    rows: pd.DataFrame
    rejects: pd.DataFrame
    rows_read: int
    duplicates_removed: int
    # Columns of the drop that are not canonical: ignored (the asset warns).
    extra_columns: list[str]
    # Lines of the file inside malformed rows beyond their first (a stray quote swallows
    # the lines after it into one bad row): rows lost that no count of rows shows.
    lines_swallowed: int = 0

    @property
    def reject_share(self) -> float:
        """Share of the file's rows rejected, each swallowed line counted as a row."""
        lost = len(self.rejects) + self.lines_swallowed
        return lost / (self.rows_read + self.lines_swallowed) if self.rows_read else 0.0


@dataclass(frozen=True)
class PlausibleTimes:
    """The instants a drop's timestamps may take: from ``earliest`` up to (not including)
    ``latest``. Outside it a time is a typo or a placeholder (year 1900, 2200), and the row
    is quarantined rather than making a 126-year response time."""

    earliest: pd.Timestamp
    latest: pd.Timestamp

    def rule(self) -> str:
        return f"implausible time (outside {self.earliest:%Y-%m-%d} .. {self.latest:%Y-%m-%d})"


def stage_drop(
    raw: pd.DataFrame,
    source: Source,
    file: str,
    naive_timezone: str = "UTC",
    plausible: PlausibleTimes | None = None,
) -> StagedDrop:
    """Type, validate and de-duplicate one drop's rows (text, with the drop's bookkeeping
    columns). Timestamps without a zone are read in ``naive_timezone``; with ``plausible``,
    timestamps outside it reject their row."""
    columns = [c for c in raw.columns if c not in BOOKKEEPING]
    missing = [name for name in source.required if name not in columns]
    if missing and (columns or len(raw)):  # an empty JSON lines drop has no columns at all
        raise MissingColumnsError(
            f"{file}: missing required column(s) {', '.join(missing)} for source "
            f"{source.name!r}; the file has: {', '.join(columns) or 'no columns'}"
        )
    well_formed, malformed = _split_malformed(raw)
    typed, parse_problems = _parse(well_formed, source, naive_timezone, plausible)
    problems = pd.concat(
        [_malformed_problems(malformed), parse_problems, _schema_problems(typed, source)],
        ignore_index=True,
    )
    # A value that failed to parse is also empty; report the parse error only.
    problems = problems.drop_duplicates(subset=["index", "column"], keep="first")
    bad_index = pd.Index(problems["index"].unique()).intersection(typed.index)
    # (Selecting rows copies every column: a clean drop's 3.9 million rows, about 0.5 s.)
    valid = typed.drop(index=bad_index) if len(bad_index) else typed
    deduplicated = last_of_each(valid, list(source.key))
    return StagedDrop(
        # Validated once more by the table's model when published.
        rows=deduplicated.reset_index(drop=True),
        rejects=_rejects(raw, problems, source, file),
        rows_read=len(raw),
        duplicates_removed=len(valid) - len(deduplicated),
        extra_columns=[c for c in columns if c not in source.columns],
        lines_swallowed=int(_swallowed_lines(malformed).sum()),
    )


def _split_malformed(raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the rows split into fields, the malformed ones kept as their text)."""
    malformed = raw[MALFORMED].notna() if MALFORMED in raw.columns else None
    if malformed is None or not malformed.any():
        return raw, raw.iloc[:0]
    return raw[~malformed], raw[malformed]


def _swallowed_lines(rows: pd.DataFrame) -> pd.Series:
    if RAW_TEXT not in rows.columns:
        return pd.Series(0, index=rows.index)
    return rows[RAW_TEXT].str.rstrip("\n").str.count("\n").fillna(0).astype("int64")


def _malformed_problems(rows: pd.DataFrame) -> pd.DataFrame:
    swallowed = _swallowed_lines(rows)
    note = pd.Series(
        "; it runs over " + swallowed.astype("str") + " more line(s) of the file, rows lost in it",
        index=rows.index,
        dtype="str",
    ).where(swallowed > 0, "")
    return pd.DataFrame(
        {
            "index": rows.index,
            "column": "(row)",
            "rule": (rows[MALFORMED] + note).to_numpy(),
            "value": rows[RAW_TEXT].str.slice(0, 200).to_numpy(),
        }
    )


def _parse(
    raw: pd.DataFrame, source: Source, naive_timezone: str, plausible: PlausibleTimes | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    typed = pd.DataFrame(index=raw.index)
    problems: list[pd.DataFrame | None] = []
    for name in source.columns:
        text = _clean_text(raw[name]) if name in raw.columns else _empty_text(raw.index)
        if name in source.timestamps:
            typed[name] = parse_timestamps(text, naive_timezone)
            problems.append(_problems(text, typed[name], name, "unparseable timestamp"))
            if plausible is not None:
                outside = typed[name] < plausible.earliest
                if name not in source.may_be_future:
                    outside |= typed[name] >= plausible.latest
                problems.append(_problems(text, typed[name].mask(outside), name, plausible.rule()))
        elif name in source.numbers:
            number = pd.to_numeric(text, errors="coerce").astype("float64")
            problems.append(_problems(text, number, name, "not a number"))
            # inf and nan parse as floats, but measure nothing.
            typed[name] = number.where(np.isfinite(number))
            problems.append(_problems(text, typed[name], name, "not a finite number"))
        else:
            typed[name] = text.str.lower() if name in source.lowercase else text
            # A NUL character breaks PostgreSQL's text type (and most BI tools).
            problems.append(
                _problems(text, typed[name].mask(text.str.contains("\x00", regex=False)), name,
                          "NUL character in text")
            )  # fmt: skip
    _fill_defaults(typed, source)
    found = [frame for frame in problems if frame is not None]
    return typed, pd.concat(found, ignore_index=True) if found else _no_problems()


def _fill_defaults(typed: pd.DataFrame, source: Source) -> None:
    """Empty optional values get the source's default: a constant, or one looked up by
    another column (e.g. a survey's scale by its type)."""
    for name, default in source.defaults:
        if isinstance(default, tuple):
            by_column, mapping = default
            fill = typed[by_column].astype(object).map(mapping)
            typed[name] = typed[name].fillna(fill.astype(typed[name].dtype))
        else:
            typed[name] = typed[name].fillna(default)


_HAS_ZONE = r"(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$"


def parse_timestamps(text: pd.Series, naive_timezone: str = "UTC") -> pd.Series:
    """ISO 8601 text to UTC microseconds.

    Text without a zone is wall-clock time in ``naive_timezone``; a wall-clock time
    that does not exist or is ambiguous there (a daylight-saving change) is
    unparseable rather than guessed.
    """
    zoned = text.str.contains(_HAS_ZONE, regex=True, na=False)
    parsed = pd.to_datetime(text.where(zoned), format="ISO8601", utc=True, errors="coerce")
    naive = text.notna() & ~zoned
    if naive.any():
        local = pd.to_datetime(text[naive], format="ISO8601", errors="coerce")
        if naive_timezone != "UTC":
            local = local.dt.tz_localize(naive_timezone, ambiguous="NaT", nonexistent="NaT")
        else:
            local = local.dt.tz_localize("UTC")
        parsed = parsed.dt.as_unit("us")
        parsed[naive] = local.dt.tz_convert("UTC").dt.as_unit("us")
    return parsed.dt.as_unit("us")


def _clean_text(column: pd.Series) -> pd.Series:
    stripped = column.astype("str").str.strip()
    return stripped.where(stripped != "", None)


def _empty_text(index: pd.Index) -> pd.Series:
    return pd.Series(None, index=index, dtype="str")


def _problems(text: pd.Series, parsed: pd.Series, column: str, rule: str) -> pd.DataFrame | None:
    """The values given but not parsed, or None when there are none (most columns of most
    drops: no frame is built for them)."""
    failed = text.notna() & parsed.isna()
    if not failed.any():
        return None
    return pd.DataFrame(
        {
            "index": text.index[failed],
            "column": column,
            "rule": rule,
            "value": text[failed].to_numpy(),
        }
    )


def _no_problems() -> pd.DataFrame:
    return pd.DataFrame({"index": [], "column": [], "rule": [], "value": []})


def _schema_problems(typed: pd.DataFrame, source: Source) -> pd.DataFrame:
    try:
        source.model.validate(typed, lazy=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        if cases["index"].isna().any():
            # A whole-column failure (e.g. a dtype) is a bug in parsing, not bad input.
            raise
        row_level = cases["schema_context"] == "DataFrameSchema"
        # A row-level check lists every column of the row: report it once, on the
        # column it guards.
        cases = cases[~row_level | ~cases.duplicated(subset=["index", "check"])]
        column = cases["column"].where(~row_level, cases["check"].map(ROW_CHECK_COLUMNS))
        index = cases["index"].astype("int64").to_numpy()
        return pd.DataFrame(
            {
                "index": index,
                "column": column.to_numpy(),
                "rule": [
                    _readable_rule(source, c, k)
                    for c, k in zip(column, cases["check"].astype("str"), strict=True)
                ],
                "value": [str(typed.at[i, c]) for i, c in zip(index, column, strict=True)],
            }
        )
    return _no_problems()


# The column each row-level (dataframe) check is about.
ROW_CHECK_COLUMNS = {
    "score_in_range": "score",
    "whole_score": "score",
    "known_scale": "scale_max",
    "churn_after_signup": "churned_at",
    "answered_after_sent": "sent_at",
}


def _readable_rule(source: Source, column: str, check: str) -> str:
    if check == "not_nullable" and column == "scale_direction":
        return (
            "scale_direction required for a CES answer: higher_is_better ('made it easy') "
            "or lower_is_better ('how much effort')"
        )
    if check == "not_nullable":
        return "required value missing"
    if check.startswith("isin"):
        checks = source.model.to_schema().columns[column].checks
        allowed = next(c.statistics["allowed_values"] for c in checks if c.name == "isin")
        return "not one of " + ", ".join(allowed)
    if check == "score_in_range":
        return "score outside the response's scale (nps 0-10, csat 1-5, ces 1-scale_max)"
    if check == "whole_score":
        return "score not a whole number (nps and csat answers are whole points)"
    if check == "known_scale":
        return "scale_max not the survey type's scale (nps 10, csat 5, ces 5, 7 or 10)"
    if check == "churn_after_signup":
        return "churned before signing up"
    if check == "answered_after_sent":
        return "sent after it was answered"
    return check


def _rejects(raw: pd.DataFrame, problems: pd.DataFrame, source: Source, file: str) -> pd.DataFrame:
    if problems.empty:
        return pd.DataFrame({name: pd.Series(dtype="str") for name in _REJECT_COLUMNS}).astype(
            {"row_number": "int64"}
        )
    detail = problems["column"] + ": " + problems["rule"] + " (value " + problems["value"] + ")"
    per_row = (
        problems.assign(detail=detail)
        .groupby("index", sort=True)
        .agg(
            columns=("column", lambda s: ", ".join(dict.fromkeys(s))),
            rules=("rule", lambda s: "; ".join(dict.fromkeys(s))),
            details=("detail", "; ".join),
        )
    )
    rows = raw.loc[per_row.index]
    row_number = rows[ROW_NUMBER].astype("int64").to_numpy()
    fields = rows.drop(columns=[c for c in BOOKKEEPING if c in rows.columns])
    raw_json = fields.to_json(orient="records", lines=True, force_ascii=False).splitlines()
    if RAW_TEXT in rows.columns:
        # A malformed row has no fields: keep its text as it was in the file.
        text = rows[RAW_TEXT]
        as_text = [json.dumps({"text": t}, ensure_ascii=False) for t in text.dropna()]
        merged = pd.Series(raw_json, index=rows.index, dtype="str")
        merged[text.notna()] = pd.Series(as_text, index=text.dropna().index, dtype="str")
        raw_json = merged.tolist()
    return pd.DataFrame(
        {
            "source": source.name,
            "file": file,
            "row_number": row_number,
            "columns": per_row["columns"].to_numpy(),
            "rules": per_row["rules"].to_numpy(),
            "message": (
                f"{file} row " + rows[ROW_NUMBER].astype("str") + ": " + per_row["details"]
            ).to_numpy(),
            "raw_row": raw_json,
        }
    )
