"""Survey metrics on a hand-made frame; expected values worked out by hand."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from cx_pipeline.lib.metrics.core import Day
from cx_pipeline.lib.metrics.surveys import normalised_ces, survey_tables

DAY = Day(dt.date(2026, 3, 10), "UTC")
Z = 1.959963984540054


def response(
    kind, score, at, channel="email", ticket=None, topic=None, scale=None, direction=None,
    stage="support",
):  # fmt: skip
    scale = scale or {"nps": 10.0, "csat": 5.0, "ces": 7.0}[kind]
    return {
        "survey_type": kind,
        "score": float(score),
        "submitted_at": pd.Timestamp(at, tz="UTC"),
        "channel": channel,
        "ticket_id": ticket,
        "topic": topic,
        "agent_group": "tier1" if ticket else None,
        "segment": "smb",
        "plan": None,
        "scale_max": scale,
        "scale_direction": direction or "higher_is_better",
        "journey_stage": stage,
    }


RESPONSES = pd.DataFrame(
    [
        response("nps", 10, "2026-03-10 09:00", stage="renewal"),
        response("nps", 9, "2026-03-10 10:00", stage="renewal"),
        response("nps", 6, "2026-03-10 11:00"),
        response("nps", 8, "2026-03-10 12:00", channel="web"),
        response("nps", 0, "2026-03-10 13:00", channel="web"),
        response("nps", 10, "2026-03-05 09:00"),  # in the 7- and 30-day windows
        response("nps", 0, "2026-02-01 09:00"),  # outside every window
        response("csat", 5, "2026-03-10 09:00", ticket="T1", topic="billing"),
        response("csat", 4, "2026-03-10 09:30"),
        response("csat", 3, "2026-03-10 10:00"),
        response("csat", 1, "2026-03-10 10:30", ticket="T2", topic="billing"),
        response("ces", 5, "2026-03-10 09:00"),  # 1-7, higher = easier: 5
        response("ces", 2, "2026-03-10 09:00", scale=5.0, direction="lower_is_better"),  # 5.5
        response("ces", 10, "2026-03-10 09:00", scale=10.0),  # 7
    ]
).astype({"channel": "str", "topic": "str", "ticket_id": "str", "segment": "str", "plan": "str"})


def row(frame: pd.DataFrame, window: int, breakdown: str, value: str) -> pd.Series:
    match = frame[
        (frame["window_days"] == window)
        & (frame["breakdown"] == breakdown)
        & (frame["breakdown_value"] == value)
    ]
    assert len(match) == 1, (window, breakdown, value)
    return match.iloc[0]


def test_nps_counts_score_and_margin_of_error() -> None:
    nps = survey_tables(RESPONSES, DAY, min_responses=3)["nps"]
    day = row(nps, 1, "all", "(all)")
    # 10, 9 promoters; 8 passive; 6, 0 detractors: NPS = 100 x (2 - 2) / 5 = 0.
    assert (day["responses"], day["promoters"], day["passives"], day["detractors"]) == (5, 2, 1, 2)
    assert day["nps"] == 0
    # Variance p + d - (p - d)^2 = 0.4 + 0.4 - 0 = 0.8; standard error 100 x sqrt(0.8 / 5).
    assert day["nps_standard_error"] == pytest.approx(40)
    # Adjusted Wald: n' = 8, p' = d' = 2.75 / 8; variance 0.6875; MoE 100 z sqrt(0.6875 / 8).
    assert day["nps_margin_of_error"] == pytest.approx(100 * Z * math.sqrt(0.6875 / 8))
    email = row(nps, 1, "channel", "email")
    assert email["nps"] == pytest.approx(100 / 3)  # 2 promoters, 1 detractor of 3
    assert email["nps_standard_error"] == pytest.approx(100 * math.sqrt((8 / 9) / 3))
    # n' = 6, p' = 2.75 / 6, d' = 1.75 / 6: variance 0.75 - (1 / 6)^2.
    assert email["nps_margin_of_error"] == pytest.approx(
        100 * Z * math.sqrt((0.75 - (1 / 6) ** 2) / 6)
    )
    assert not email["low_sample"]
    assert row(nps, 1, "channel", "web")["low_sample"]  # 2 responses < 3
    week = row(nps, 7, "all", "(all)")
    assert (week["responses"], week["promoters"]) == (6, 3)  # + the 03-05 promoter
    assert week["nps"] == pytest.approx(100 / 6)
    assert row(nps, 30, "all", "(all)")["responses"] == 6  # 02-01 is outside 30 days
    assert row(nps, 1, "plan", "(unknown)")["responses"] == 5


def test_nps_breaks_down_by_journey_stage() -> None:
    nps = survey_tables(RESPONSES, DAY, min_responses=3)["nps"]
    # Renewal: the 10 and the 9 -> 100, from two answers: flagged.
    renewal = row(nps, 1, "journey_stage", "renewal")
    assert (renewal["responses"], renewal["nps"], renewal["low_sample"]) == (2, 100, True)
    # Support: 6, 8, 0 -> 0 promoters, 2 detractors of 3 -> -66.7.
    support = row(nps, 1, "journey_stage", "support")
    assert support["nps"] == pytest.approx(-200 / 3)
    # The 7-day window adds the 03-05 promoter (support): 1 - 2 of 4 = -25.
    assert row(nps, 7, "journey_stage", "support")["nps"] == pytest.approx(-25)


def test_csat_top_two_box_mean_and_css_breakdowns() -> None:
    csat = survey_tables(RESPONSES, DAY, min_responses=30)["csat"]
    day = row(csat, 1, "all", "(all)")
    # 5 and 4 are satisfied of 5, 4, 3, 1: 50 %; mean 13 / 4.
    assert (day["responses"], day["satisfied"]) == (4, 2)
    assert day["csat_rate"] == 0.5
    assert day["score_mean"] == pytest.approx(3.25)
    assert day["csat_standard_error"] == pytest.approx(0.25)  # sqrt(0.5 x 0.5 / 4)
    # Agresti-Coull: 2 + z^2 / 2 of 4 + z^2 is still one half; MoE 100 z sqrt(0.25 / (4 + z^2)).
    assert day["csat_margin_of_error"] == pytest.approx(Z * math.sqrt(0.25 / (4 + Z**2)))
    assert day["low_sample"]
    # CSS: only the two ticket-linked answers (5 and 1).
    css = row(csat, 1, "ticket_linked", "yes")
    assert (css["responses"], css["csat_rate"]) == (2, 0.5)
    assert row(csat, 1, "topic", "billing")["score_mean"] == 3
    assert set(csat.loc[csat["breakdown"] == "topic", "breakdown_value"]) == {"billing"}


def test_ces_is_normalised_to_1_7_before_averaging() -> None:
    assert normalised_ces(
        pd.Series([1.0, 10.0]), pd.Series([10.0, 10.0]), pd.Series(["higher_is_better"] * 2)
    ).tolist() == [1, 7]
    # 2 on a 1-5 "how much effort" scale: 1 + 6 x 1/4 = 2.5 effort -> 8 - 2.5 = 5.5 ease.
    assert normalised_ces(
        pd.Series([2.0]), pd.Series([5.0]), pd.Series(["lower_is_better"])
    ).tolist() == [5.5]
    ces = survey_tables(RESPONSES, DAY, min_responses=30)["ces"]
    day = row(ces, 1, "all", "(all)")
    values = np.array([5.0, 5.5, 7.0])
    assert day["responses"] == 3
    assert day["score_mean"] == pytest.approx(values.mean())
    assert day["score_sd"] == pytest.approx(values.std(ddof=1))
    assert day["score_margin_of_error"] == pytest.approx(Z * values.std(ddof=1) / math.sqrt(3))


def test_no_responses_give_no_rows() -> None:
    tables = survey_tables(RESPONSES.iloc[0:0], DAY, min_responses=30)
    assert all(frame.empty for frame in tables.values())


def test_answer_time_from_sending_to_answering() -> None:
    sent = [
        pd.Timestamp("2026-03-10 08:00", tz="UTC"),  # CSAT 5 at 09:00: 60 min
        pd.Timestamp("2026-03-09 09:30", tz="UTC"),  # CSAT 4 at 03-10 09:30: 1,440 min
        pd.NaT,  # CSAT 3: send time unknown
        pd.Timestamp("2026-03-10 10:00", tz="UTC"),  # CSAT 1 at 10:30: 30 min
    ]
    csat = RESPONSES[RESPONSES["survey_type"] == "csat"].assign(sent_at=sent)
    day = row(survey_tables(csat, DAY, 30)["csat"], 1, "all", "(all)")
    assert (day["responses"], day["timed_responses"]) == (4, 3)
    assert day["answer_minutes_sum"] == pytest.approx(1530)
    assert day["answer_minutes_mean"] == pytest.approx(510)
    assert day["answer_minutes_median"] == pytest.approx(60)
    # Without any send time the figures are empty, not zero.
    nps = row(survey_tables(RESPONSES, DAY, 30)["nps"], 1, "all", "(all)")
    assert nps["timed_responses"] == 0 and np.isnan(nps["answer_minutes_mean"])


def test_ticket_linked_splits_every_answer_into_yes_and_no() -> None:
    tables = survey_tables(RESPONSES, DAY, min_responses=30)
    # CSAT on 03-10: 5 (T1) and 1 (T2) are linked, 4 and 3 are not: 50 % and 50 %.
    csat = tables["csat"]
    assert (
        row(csat, 1, "ticket_linked", "no")["responses"],
        row(csat, 1, "ticket_linked", "no")["csat_rate"],
    ) == (2, 0.5)
    # NPS answers on 03-10 have no ticket: all five are "no"; there is no "yes" row.
    nps = tables["nps"]
    assert row(nps, 1, "ticket_linked", "no")["responses"] == 5
    linked = nps[(nps["breakdown"] == "ticket_linked") & (nps["window_days"] == 1)]
    assert list(linked["breakdown_value"]) == ["no"]


def test_answers_of_one_class_still_have_a_margin_of_error() -> None:
    three_promoters = pd.DataFrame(
        [response("nps", 10, f"2026-03-10 0{hour}:00") for hour in (7, 8, 9)]
        + [response("csat", 5, f"2026-03-10 0{hour}:00") for hour in (7, 8)]
    ).astype(
        {"channel": "str", "topic": "str", "ticket_id": "str", "segment": "str", "plan": "str"}
    )
    tables = survey_tables(three_promoters, DAY, min_responses=30)
    nps = row(tables["nps"], 1, "all", "(all)")
    # NPS 100, standard error 0; adjusted: n' = 6, p' = 3.75 / 6, d' = 0.75 / 6,
    # variance 0.75 - 0.5^2 = 0.5: MoE 100 z sqrt(0.5 / 6) = 56.6 points.
    assert (nps["nps"], nps["nps_standard_error"]) == (100, 0)
    assert nps["nps_margin_of_error"] == pytest.approx(100 * Z * math.sqrt(0.5 / 6))
    csat = row(tables["csat"], 1, "all", "(all)")
    # 2 of 2 satisfied: centre (2 + z^2 / 2) / (2 + z^2).
    centre = (2 + Z**2 / 2) / (2 + Z**2)
    assert (csat["csat_rate"], csat["csat_standard_error"]) == (1, 0)
    assert csat["csat_margin_of_error"] == pytest.approx(
        Z * math.sqrt(centre * (1 - centre) / (2 + Z**2))
    )


def test_survey_windows_near_the_first_day_say_how_many_days_they_cover() -> None:
    # First day 03-08, the day 03-10: the 1-, 7- and 30-day windows hold 1, 3 and 3 days.
    nps = survey_tables(RESPONSES, DAY, min_responses=3, first_day=dt.date(2026, 3, 8))["nps"]
    covered = nps.groupby("window_days")["window_days_covered"].unique()
    assert {window: list(days) for window, days in covered.items()} == {
        1: [1],
        7: [3],
        30: [3],
    }
