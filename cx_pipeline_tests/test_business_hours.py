"""Business minutes at the edges of a schedule; every expected value worked out by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from cx_pipeline.lib.metrics.business_hours import ALWAYS_OPEN, BusinessSchedule

WEEKDAYS_9_TO_5 = dict.fromkeys(["mon", "tue", "wed", "thu", "fri"], "09:00-17:00")


def utc(*values: str) -> pd.Series:
    return pd.Series(pd.to_datetime(list(values), utc=True)).astype("datetime64[us, UTC]")


def minutes(schedule: BusinessSchedule, start: str, end: str) -> float:
    return float(schedule.minutes_between(utc(start), utc(end)).iloc[0])


LONDON = BusinessSchedule.from_settings("Europe/London", WEEKDAYS_9_TO_5, ["2026-12-25"])


def test_within_one_working_day() -> None:
    assert minutes(LONDON, "2026-11-23 10:00", "2026-11-23 10:30") == 30


def test_outside_hours_counts_nothing() -> None:
    # Monday 18:00 to Tuesday 08:00: closed all night.
    assert minutes(LONDON, "2026-11-23 18:00", "2026-11-24 08:00") == 0


def test_a_weekend_is_skipped() -> None:
    # Friday 16:00 -> Monday 10:00: one hour on Friday, one on Monday.
    assert minutes(LONDON, "2026-11-20 16:00", "2026-11-23 10:00") == 120


def test_holidays_are_closed() -> None:
    # Thu 24 Dec 16:30 -> Mon 28 Dec 09:30: 30 min + Christmas (holiday) + weekend + 30 min.
    assert minutes(LONDON, "2026-12-24 16:30", "2026-12-28 09:30") == 60


def test_hours_are_in_the_schedule_zone() -> None:
    # 09:00-17:00 New York is 14:00-22:00 UTC in winter.
    new_york = BusinessSchedule.from_settings("America/New_York", WEEKDAYS_9_TO_5)
    assert minutes(new_york, "2026-11-23 13:00", "2026-11-23 15:00") == 60


def test_around_the_clock_equals_calendar_minutes_across_daylight_saving() -> None:
    berlin = BusinessSchedule.from_settings("Europe/Berlin", ALWAYS_OPEN)
    starts = utc("2026-03-28 12:00", "2026-10-24 23:30", "2026-01-01 00:00", "2026-03-29 00:59")
    ends = utc("2026-03-30 12:00", "2026-10-25 05:00", "2026-12-31 23:59", "2026-03-29 01:01")
    calendar = (ends - starts).dt.total_seconds() / 60
    assert berlin.minutes_between(starts, ends).tolist() == calendar.tolist()


def test_daylight_saving_changes_count_real_time() -> None:
    # Open 01:00-04:00 on Sundays in Berlin. On 29 Mar the clock jumps 02:00 -> 03:00:
    # 2 real hours. On 25 Oct it goes back 03:00 -> 02:00: 4 real hours.
    sundays = BusinessSchedule.from_settings("Europe/Berlin", {"sun": "01:00-04:00"})
    assert minutes(sundays, "2026-03-28 12:00", "2026-03-29 12:00") == 120
    assert minutes(sundays, "2026-10-24 12:00", "2026-10-25 12:00") == 240


def test_a_schedule_change_counts_each_day_by_the_hours_then_in_force() -> None:
    # From Mon 1 Jun 2026 the office opens 08:00-18:00. A ticket from Fri 29 May 16:00
    # to Mon 1 Jun 09:00: Friday by the old hours (60), Monday by the new (08-09: 60).
    changed = BusinessSchedule.from_settings(
        "UTC",
        WEEKDAYS_9_TO_5,
        changes={"2026-06-01": dict.fromkeys(["mon", "tue", "wed", "thu", "fri"], "08:00-18:00")},
    )
    assert minutes(changed, "2026-05-29 16:00", "2026-06-01 09:00") == 120
    assert minutes(changed, "2026-05-28 08:00", "2026-05-28 18:00") == 480  # old hours


def test_missing_instants_give_empty_minutes() -> None:
    result = LONDON.minutes_between(utc("2026-11-23 10:00", "2026-11-23 10:00"),
                                    pd.Series([pd.NaT, pd.Timestamp("2026-11-23 11:00", tz="UTC")],
                                              dtype="datetime64[us, UTC]"))  # fmt: skip
    assert pd.isna(result.iloc[0]) and result.iloc[1] == 60


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        ({"mon": "17:00-09:00"}, "business hours.mon: '17:00-09:00' must open before it closes"),
        ({"mon": "9-5"}, "business hours.mon: '9-5' is not HH:MM-HH:MM"),
        ({"monday": "09:00-17:00"}, "unknown weekday(s) ['monday']"),
    ],
)
def test_bad_schedules_are_refused_with_the_key(hours: dict[str, str], message: str) -> None:
    with pytest.raises(
        ValueError,
        match=message.replace("(", r"\(")
        .replace(")", r"\)")
        .replace("[", r"\[")
        .replace("]", r"\]"),
    ):
        BusinessSchedule.from_settings("UTC", hours)


def test_schedule_settings_from_the_environment() -> None:
    from cx_pipeline.defs.resources import metric_settings_from_env

    settings = metric_settings_from_env(
        {
            "CX_BUSINESS_HOURS": '{"mon": "09:00-12:00"}',
            "CX_BUSINESS_TIMEZONE": "Europe/London",
            "CX_HOLIDAYS": "2026-11-30, 2026-12-25",
        }
    )
    schedule = settings.schedule()
    # Mon 23 Nov 08:00 -> Mon 30 Nov 12:00: 180 min on the 23rd; the 30th is a holiday.
    assert (
        float(schedule.minutes_between(utc("2026-11-23 08:00"), utc("2026-11-30 12:00"))[0]) == 180
    )
    with pytest.raises(ValueError, match="CX_BUSINESS_HOURS is not valid JSON"):
        metric_settings_from_env({"CX_BUSINESS_HOURS": "mon 9-5"})
    with pytest.raises(ValueError, match="unknown weekday"):
        metric_settings_from_env({"CX_BUSINESS_HOURS": '{"lundi": "09:00-17:00"}'})
