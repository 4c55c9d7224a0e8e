"""On-demand formulas: always in range, deterministic, and less confident with missing inputs."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.core import ondemand
from tests.contract import WELLNESS_TRENDS

ANYTHING = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.sampled_from(["7", "abc", "", True]),
)
INPUTS = sorted(
    set(ondemand.ENERGY_WEIGHTS)
    | set(ondemand.MOOD_WEIGHTS)
    | {"is_weekend", "day_of_week", "total_minutes_7d"}
)
ROWS = st.fixed_dictionaries({}, optional={name: ANYTHING for name in INPUTS})


@given(ROWS)
def test_energy_and_mood_stay_in_range(row: dict[str, Any]) -> None:
    for formula in (ondemand.energy, ondemand.mood):
        value, confidence = formula(row)
        assert 1.0 <= value <= 10.0
        assert 0.0 <= confidence <= 1.0


@given(ROWS)
def test_wellness_stays_in_range(row: dict[str, Any]) -> None:
    score, trend = ondemand.wellness(row)
    if score is None:
        assert trend is None
    else:
        assert 0.0 <= score <= 1.0
        assert trend in WELLNESS_TRENDS


@given(st.lists(ROWS, min_size=1, max_size=5))
def test_batch_functions_handle_feast_columns(rows: list[dict[str, Any]]) -> None:
    columns = {name: [row.get(name) for row in rows] for name in INPUTS}
    out = ondemand.energy_batch(columns)
    assert len(out["predicted_energy"]) == len(rows) == len(out["energy_confidence"])
    assert out == ondemand.energy_batch(columns), "not deterministic"


FULL = {
    "avg_energy_7d": 7.0,
    "avg_mood_7d": 6.0,
    "sleep_quality_score": 0.8,
    "sleep_debt_minutes": 60.0,
    "exercise_consistency_score": 0.5,
    "avg_energy_after_exercise_7d": 8.0,
    "current_hour": 13,
    "social_engagement_score": 0.4,
    "friend_interactions_7d": 5,
    "activity_diversity_7d": 3,
    "total_minutes_7d": 700.0,
}


def test_energy_worked_example() -> None:
    # 7 + 2(0.8-0.6) - 60/240 + (0.5-0.4) + 0.2(8-7) + 0.8cos(0) = 8.25
    value, confidence = ondemand.energy(FULL)
    assert value == pytest.approx(8.25)
    assert confidence == pytest.approx(1.0)


def test_missing_inputs_lower_the_confidence_and_never_raise() -> None:
    _, full = ondemand.energy(FULL)
    _, partial = ondemand.energy({**FULL, "avg_energy_7d": None, "current_hour": math.nan})
    _, empty = ondemand.energy({})
    assert full > partial > empty == pytest.approx(0.1)
    assert ondemand.mood({})[1] < ondemand.mood(FULL)[1]


def test_wellness_weights_and_trend() -> None:
    # activity = (min(1, 700/1050) + min(1, 3/5)) / 2 = (0.6667 + 0.6) / 2
    activity = (700 / 1050 + 0.6) / 2
    score, trend = ondemand.wellness(FULL)
    assert score == pytest.approx(0.4 * 0.8 + 0.3 * 0.5 + 0.3 * activity, abs=1e-6)
    assert trend == "good"
    assert ondemand.wellness({}) == (None, None)
    only_sleep, _ = ondemand.wellness({"sleep_quality_score": 0.9})
    assert only_sleep == pytest.approx(0.9)


@pytest.mark.parametrize(
    ("score", "trend"),
    [(1.0, "excellent"), (0.8, "excellent"), (0.79, "good"), (0.6, "good"), (0.4, "fair"),
     (0.39, "needs_improvement"), (0.0, "needs_improvement")],
)  # fmt: skip
def test_trend_thresholds(score: float, trend: str) -> None:
    assert ondemand.trend(score) == trend


@pytest.mark.parametrize(
    ("is_weekend", "day_of_week", "weekend"),
    [
        (1, None, True),
        (0, None, False),
        (None, 5, True),
        (None, 6, True),
        (None, 0, False),
        (None, 4, False),
        (0, 6, False),  # is_weekend, when given, wins
        (None, None, False),
        (None, 9, False),  # no such day: unknown, so no nudge
    ],
)
def test_the_weekend_comes_from_is_weekend_or_else_day_of_week(
    is_weekend: int | None, day_of_week: int | None, weekend: bool
) -> None:
    assert ondemand.weekend(is_weekend, day_of_week) is weekend
    row = {"avg_energy_7d": 5.0, "is_weekend": is_weekend, "day_of_week": day_of_week}
    assert ondemand.energy(row)[0] == (5.2 if weekend else 5.0)
