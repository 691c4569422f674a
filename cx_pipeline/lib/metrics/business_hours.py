"""Business minutes between two instants, under a working-hours schedule. Pure pandas.

Rules (docs/metrics.md, "Business hours"):
- A schedule is one opening interval per weekday in the schedule's own time zone
  (``{"mon": "09:00-17:00", ...}``; a weekday not listed is closed; "00:00-24:00"
  is the whole day), plus holiday dates on which nothing is open.
- Working time is real elapsed time inside the open intervals, so a day whose
  clock jumps (daylight saving) has its true length, and a 24/7 schedule gives
  exactly the calendar figure.
- A schedule change takes effect from its date: each calendar day is counted by
  the schedule in force on that day, so a ticket open across a change is counted
  by the old hours before it and the new hours after.

Vectorised: every instant is turned into "business minutes since the first day of
a calendar" (one lookup in a per-day table), and a duration is the difference.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CLOSED = (-1, -1)
WeeklyHours = tuple[tuple[int, int], ...]  # per weekday (mon first): open, close minutes


def parse_weekly_hours(hours: Mapping[str, str], where: str = "business hours") -> WeeklyHours:
    """{"mon": "09:00-17:00", ...} -> (open, close) minutes after midnight per weekday."""
    unknown = set(hours) - set(WEEKDAYS)
    if unknown:
        raise ValueError(f"{where}: unknown weekday(s) {sorted(unknown)}; use {WEEKDAYS}")
    return tuple(_interval(hours[day], f"{where}.{day}") if day in hours else CLOSED
                 for day in WEEKDAYS)  # fmt: skip


def _interval(text: str, where: str) -> tuple[int, int]:
    try:
        start, end = (_clock_minutes(part) for part in text.split("-"))
    except ValueError as error:
        raise ValueError(f"{where}: {text!r} is not HH:MM-HH:MM ({error})") from None
    if not 0 <= start < end <= 24 * 60:
        raise ValueError(f"{where}: {text!r} must open before it closes, within 00:00-24:00")
    return start, end


def _clock_minutes(text: str) -> int:
    hours, minutes = text.strip().split(":")
    return int(hours) * 60 + int(minutes)


@dataclass(frozen=True)
class BusinessSchedule:
    timezone: str
    weekly: WeeklyHours
    holidays: frozenset[dt.date] = frozenset()
    # (effective date, weekly hours from that date on), in date order.
    changes: tuple[tuple[dt.date, WeeklyHours], ...] = field(default=())

    @classmethod
    def from_settings(
        cls,
        timezone: str,
        hours: Mapping[str, str],
        holidays: Iterable[str] = (),
        changes: Mapping[str, Mapping[str, str]] | None = None,
    ) -> BusinessSchedule:
        return cls(
            timezone=timezone,
            weekly=parse_weekly_hours(hours),
            holidays=frozenset(dt.date.fromisoformat(day) for day in holidays),
            changes=tuple(
                sorted(
                    (dt.date.fromisoformat(day), parse_weekly_hours(h, f"change {day}"))
                    for day, h in (changes or {}).items()
                )
            ),
        )

    def calendar(self, first: dt.date, last: dt.date) -> pd.DataFrame:
        """Per local date in [first, last]: open and close instants (UTC seconds since the
        epoch) and the working seconds of all earlier dates of the calendar."""
        dates = pd.date_range(first, last, freq="D")
        hours = np.tile(np.array(self.weekly, dtype="int64")[None], (len(dates), 1, 1))
        for since, weekly in self.changes:
            hours[dates >= pd.Timestamp(since)] = np.array(weekly, dtype="int64")
        todays = hours[np.arange(len(dates)), dates.day_of_week]
        closed = (todays[:, 0] < 0) | dates.isin(pd.DatetimeIndex(sorted(self.holidays)))
        opens = _local_instants(dates, todays[:, 0], self.timezone, earlier=True)
        closes = _local_instants(dates, todays[:, 1], self.timezone, earlier=False)
        working = np.where(closed, 0.0, closes - opens)
        before = np.concatenate([[0.0], np.cumsum(working)[:-1]])
        return pd.DataFrame(
            {"open": opens, "close": np.where(closed, opens, closes), "before": before},
            index=dates,
        )

    def working_minutes(self, date: dt.date) -> float:
        """Business minutes of one local date (0 on a closed day or holiday)."""
        day = self.calendar(date, date).iloc[0]
        return float(day["close"] - day["open"]) / 60

    def minutes_between(self, start: pd.Series, end: pd.Series) -> pd.Series:
        """Business minutes from each start to its end (empty where either is)."""
        known = start.notna() & end.notna()
        if not known.any():
            return pd.Series(np.nan, index=start.index, dtype="float64")
        dates = pd.concat([self._local_dates(start[known]), self._local_dates(end[known])])
        calendar = self.calendar(dates.min().date(), dates.max().date())
        seconds = self._position(end[known], calendar) - self._position(start[known], calendar)
        return (seconds / 60).reindex(start.index)

    def _local_dates(self, instants: pd.Series) -> pd.Series:
        return instants.dt.tz_convert(self.timezone).dt.tz_localize(None).dt.normalize()

    def _position(self, instants: pd.Series, calendar: pd.DataFrame) -> pd.Series:
        """Working seconds from the calendar's first day to each instant."""
        row = calendar.index.get_indexer(pd.DatetimeIndex(self._local_dates(instants)))
        at = _epoch_seconds(instants)
        opens, closes = calendar["open"].to_numpy()[row], calendar["close"].to_numpy()[row]
        inside = np.clip(at, opens, closes) - opens
        return pd.Series(calendar["before"].to_numpy()[row] + inside, index=instants.index)


def _local_instants(
    dates: pd.DatetimeIndex, minutes: np.ndarray, timezone: str, earlier: bool
) -> np.ndarray:
    """Epoch seconds of local wall-clock times (a date plus minutes; 1440 is next midnight).
    A clock time skipped by daylight saving moves forward; a repeated one takes the
    earlier (opening) or later (closing) instant, so no working time is lost."""
    naive = dates + pd.to_timedelta(np.maximum(minutes, 0), unit="min")
    local = naive.tz_localize(
        timezone, ambiguous=np.full(len(naive), earlier), nonexistent="shift_forward"
    )
    return _epoch_seconds(pd.Series(local))


def _epoch_seconds(instants: pd.Series) -> np.ndarray:
    utc = instants.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[us]")
    return utc.to_numpy().astype("int64") / 1e6


ALWAYS_OPEN = {day: "00:00-24:00" for day in WEEKDAYS}
