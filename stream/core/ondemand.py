"""The on-demand formulas: energy and mood predictions and the wellness composite.

Pure, deterministic, and total: every input may be missing (None, NaN, out of range), a missing
input only lowers the confidence, and every output stays in its range. The Feast on-demand views in
feature_repo/on_demand.py call the `*_batch` functions, which take and return Feast's python-mode
columns (a dict of equal-length lists).

Energy and mood start from the user's own recent average (or the scale's middle, 5.5) and move it
by bounded, documented nudges; each nudge's input carries a weight, and the confidence is
0.1 + 0.9 x (the weights of the inputs present).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

SCALE_MIDDLE: Final = 5.5

# Input name -> share of the confidence it carries when present.
ENERGY_WEIGHTS: Final = {
    "avg_energy_7d": 0.35,
    "sleep_quality_score": 0.2,
    "sleep_debt_minutes": 0.1,
    "exercise_consistency_score": 0.15,
    "avg_energy_after_exercise_7d": 0.1,
    "current_hour": 0.1,
}
MOOD_WEIGHTS: Final = {
    "avg_mood_7d": 0.35,
    "sleep_quality_score": 0.2,
    "social_engagement_score": 0.15,
    "friend_interactions_7d": 0.05,
    "exercise_consistency_score": 0.15,
    "activity_diversity_7d": 0.1,
}
WELLNESS_WEIGHTS: Final = {"sleep": 0.4, "exercise": 0.3, "activity": 0.3}
WELLNESS_TRENDS: Final = ((0.8, "excellent"), (0.6, "good"), (0.4, "fair"))


def number(value: Any, low: float = -math.inf, high: float = math.inf) -> float | None:
    """The value as a finite float inside [low, high], or None: the one notion of 'missing'."""
    if value is None or isinstance(value, bool):
        return None
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(result) or not low <= result <= high:
        return None
    return result


def clip(value: float, low: float, high: float) -> float:
    return min(high, max(low, value))


def confidence(present: Mapping[str, float | None], weights: Mapping[str, float]) -> float:
    share = sum(w for name, w in weights.items() if present.get(name) is not None)
    return round(clip(0.1 + 0.9 * share, 0.0, 1.0), 6)


def circadian(hour: float | None) -> float:
    """Alertness nudge by local hour: +0.8 at 13:00, -0.8 at 01:00, 0 when unknown."""
    if hour is None:
        return 0.0
    return 0.8 * math.cos(2 * math.pi * (hour - 13) / 24)


def weekend(is_weekend: Any, day_of_week: Any) -> bool:
    """Whether the request falls on a weekend: `is_weekend` when given, else `day_of_week`
    (0 = Monday ... 6 = Sunday; 5 and 6 are the weekend)."""
    flag = number(is_weekend, 0, 1)
    if flag is not None:
        return flag == 1
    day = number(day_of_week, 0, 6)
    return day is not None and day >= 5


def energy(row: Mapping[str, Any]) -> tuple[float, float]:
    """(predicted_energy 1-10, energy_confidence 0-1) for one row."""
    x = {
        "avg_energy_7d": number(row.get("avg_energy_7d"), 1, 10),
        "sleep_quality_score": number(row.get("sleep_quality_score"), 0, 1),
        "sleep_debt_minutes": number(row.get("sleep_debt_minutes"), 0),
        "exercise_consistency_score": number(row.get("exercise_consistency_score"), 0, 1),
        "avg_energy_after_exercise_7d": number(row.get("avg_energy_after_exercise_7d"), 1, 10),
        "current_hour": number(row.get("current_hour"), 0, 23.999),
    }
    base = x["avg_energy_7d"] if x["avg_energy_7d"] is not None else SCALE_MIDDLE
    value = base
    if x["sleep_quality_score"] is not None:
        value += 2.0 * (x["sleep_quality_score"] - 0.6)
    if x["sleep_debt_minutes"] is not None:
        value -= min(1.5, x["sleep_debt_minutes"] / 240)
    if x["exercise_consistency_score"] is not None:
        value += 1.0 * (x["exercise_consistency_score"] - 0.4)
    if x["avg_energy_after_exercise_7d"] is not None:
        value += 0.2 * (x["avg_energy_after_exercise_7d"] - base)
    value += circadian(x["current_hour"])
    if weekend(row.get("is_weekend"), row.get("day_of_week")):
        value += 0.2
    return round(clip(value, 1.0, 10.0), 6), confidence(x, ENERGY_WEIGHTS)


def mood(row: Mapping[str, Any]) -> tuple[float, float]:
    """(predicted_mood 1-10, mood_confidence 0-1) for one row."""
    x = {
        "avg_mood_7d": number(row.get("avg_mood_7d"), 1, 10),
        "sleep_quality_score": number(row.get("sleep_quality_score"), 0, 1),
        "social_engagement_score": number(row.get("social_engagement_score"), 0, 1),
        "friend_interactions_7d": number(row.get("friend_interactions_7d"), 0),
        "exercise_consistency_score": number(row.get("exercise_consistency_score"), 0, 1),
        "activity_diversity_7d": number(row.get("activity_diversity_7d"), 0),
    }
    value = x["avg_mood_7d"] if x["avg_mood_7d"] is not None else SCALE_MIDDLE
    if x["sleep_quality_score"] is not None:
        value += 1.5 * (x["sleep_quality_score"] - 0.6)
    if x["social_engagement_score"] is not None:
        value += 1.0 * (x["social_engagement_score"] - 0.3)
    if x["friend_interactions_7d"] is not None:
        value += 0.3 * min(1.0, x["friend_interactions_7d"] / 10)
    if x["exercise_consistency_score"] is not None:
        value += 0.8 * (x["exercise_consistency_score"] - 0.4)
    if x["activity_diversity_7d"] is not None:
        value += 0.1 * (min(5.0, x["activity_diversity_7d"]) - 2.5)
    return round(clip(value, 1.0, 10.0), 6), confidence(x, MOOD_WEIGHTS)


def activity_score(total_minutes_7d: Any, activity_diversity_7d: Any) -> float | None:
    """0-1: half for logging 150 minutes a day (1,050 a week), half for five kinds of activity."""
    minutes = number(total_minutes_7d, 0)
    kinds = number(activity_diversity_7d, 0)
    if minutes is None and kinds is None:
        return None
    parts = [min(1.0, v / cap) for v, cap in ((minutes, 1050.0), (kinds, 5.0)) if v is not None]
    return sum(parts) / len(parts)


def wellness(row: Mapping[str, Any]) -> tuple[float | None, str | None]:
    """(wellness_score 0-1, wellness_trend): 40% sleep + 30% exercise + 30% activity score.

    A missing component is left out and the others' weights are scaled up to 1; with none of
    them the score and the trend are null rather than a made-up number.
    """
    parts = {
        "sleep": number(row.get("sleep_quality_score"), 0, 1),
        "exercise": number(row.get("exercise_consistency_score"), 0, 1),
        "activity": activity_score(row.get("total_minutes_7d"), row.get("activity_diversity_7d")),
    }
    present = {k: v for k, v in parts.items() if v is not None}
    if not present:
        return None, None
    weight = sum(WELLNESS_WEIGHTS[k] for k in present)
    score = round(clip(sum(WELLNESS_WEIGHTS[k] * v for k, v in present.items()) / weight, 0, 1), 6)
    return score, trend(score)


def trend(score: float) -> str:
    for threshold, label in WELLNESS_TRENDS:
        if score >= threshold:
            return label
    return "needs_improvement"


def _batch(
    inputs: Mapping[str, Sequence[Any]],
    formula: Callable[[Mapping[str, Any]], tuple[Any, Any]],
    outputs: tuple[str, str],
) -> dict[str, list[Any]]:
    n = max((len(v) for v in inputs.values()), default=0)
    rows = ({name: values[i] for name, values in inputs.items()} for i in range(n))
    first: list[Any] = []
    second: list[Any] = []
    for row in rows:
        a, b = formula(row)
        first.append(a)
        second.append(b)
    return {outputs[0]: first, outputs[1]: second}


def energy_batch(inputs: Mapping[str, Sequence[Any]]) -> dict[str, list[Any]]:
    return _batch(inputs, energy, ("predicted_energy", "energy_confidence"))


def mood_batch(inputs: Mapping[str, Sequence[Any]]) -> dict[str, list[Any]]:
    return _batch(inputs, mood, ("predicted_mood", "mood_confidence"))


def wellness_batch(inputs: Mapping[str, Sequence[Any]]) -> dict[str, list[Any]]:
    return _batch(inputs, wellness, ("wellness_score", "wellness_trend"))
