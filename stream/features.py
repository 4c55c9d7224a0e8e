"""Feature values from folded tiles, one formula per catalog feature: pure functions.

Generic aggregates (count, sum, mean, distinct, mode) follow the catalog's `aggregate`, `column`
and `value`; scores, ratios and 'latest' features have a named formula here, written from the
catalog's definition text. `compile_view` turns a view into a list of (name, formula) once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from stream.catalog import (
    BEDTIME_STD_FOR_ZERO_CONSISTENCY_H,
    EXERCISE_TARGET_ACTIVE_DAYS_30D,
    EXERCISE_TYPES_COUNT,
    SLEEP_TARGET_MINUTES,
    SOCIAL_ENGAGEMENT_SCALE,
    SYNC_TARGET_DAYS_7D,
    Aggregate,
    FeatureSpec,
    Window,
    features_of,
)
from stream.tiles import Partial, Tile, first_tile, tiles_in

US_PER_HOUR: Final = 3_600_000_000
TILES_PER_DAY: Final = 24


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the formulas see at row time R: folded windows and the facts outside them."""

    windows: Mapping[Window, Partial]
    tiles: Mapping[int, Tile]
    row_tile: int
    row_us: int
    friend_delta: int
    last_synced_us: int | None


Formula = Callable[[Snapshot], Any]


def _count(spec: FeatureSpec) -> Formula:
    window, column, value = spec.window, spec.column, spec.value
    if value is None:
        return lambda s: s.windows[window].n
    assert column is not None
    return lambda s: s.windows[window].count_of(column, value)


def _sum(spec: FeatureSpec) -> Formula:
    window, column = spec.window, spec.column
    assert column is not None
    if window is Window.ALL_TIME:  # friend_count: the running balance, never below zero
        return lambda s: max(0, s.friend_delta)
    return lambda s: s.windows[window].total(column)


def _mean(spec: FeatureSpec) -> Formula:
    window, column = spec.window, spec.column
    assert column is not None
    return lambda s: s.windows[window].mean(column)


def _distinct(spec: FeatureSpec) -> Formula:
    window, column = spec.window, spec.column
    assert column is not None
    return lambda s: sum(1 for c in s.windows[window].counts.get(column, {}).values() if c > 0)


def _mode(spec: FeatureSpec) -> Formula:
    window, column = spec.window, spec.column
    assert column is not None

    def mode(s: Snapshot) -> str | None:
        counts = {v: c for v, c in s.windows[window].counts.get(column, {}).items() if c > 0}
        # Most frequent first; a tie goes to the alphabetically first value.
        return min(counts, key=lambda v: (-counts[v], v)) if counts else None

    return mode


def avg_bedtime_hour(s: Snapshot) -> float | None:
    mean = s.windows[Window.D7].mean("bedtime_hours_from_noon")
    return None if mean is None else (mean + 12) % 24


def sleep_consistency(s: Snapshot) -> float | None:
    variance = s.windows[Window.D7].variance("bedtime_hours_from_noon")
    if variance is None:
        return None
    return max(0.0, 1 - math.sqrt(variance) / BEDTIME_STD_FOR_ZERO_CONSISTENCY_H)


def sleep_debt(s: Snapshot) -> float | None:
    w = s.windows[Window.D7]
    if w.n == 0:
        return None
    return max(0.0, SLEEP_TARGET_MINUTES * w.n - w.total("duration_minutes"))


def active_days_30d(s: Snapshot) -> int:
    oldest = first_tile(tiles_in(Window.D30), s.row_tile)
    days = {
        (s.row_tile - index) // TILES_PER_DAY
        for index, tile in s.tiles.items()
        if tile.partial.n > 0 and oldest <= index <= s.row_tile
    }
    return len(days)


def exercise_consistency(s: Snapshot) -> float:
    return min(1.0, active_days_30d(s) / EXERCISE_TARGET_ACTIVE_DAYS_30D)


def workout_variety(s: Snapshot) -> float | None:
    counts = [c for c in s.windows[Window.D7].counts.get("exercise_type", {}).values() if c > 0]
    total = sum(counts)
    if total == 0:
        return None
    entropy = -sum(c / total * math.log(c / total) for c in counts)
    return entropy / math.log(EXERCISE_TYPES_COUNT)


def social_engagement(s: Snapshot) -> float:
    weight = s.windows[Window.D7].total("engagement_weight")
    return 1 - math.exp(-weight / SOCIAL_ENGAGEMENT_SCALE)


def avg_post_likes(s: Snapshot) -> float | None:
    w = s.windows[Window.D30]
    posts = w.count_of("action", "post")
    return w.count_of("action", "like_received") / posts if posts else None


def comment_rate(s: Snapshot) -> float:
    return s.windows[Window.D7].count_of("action", "comment") / 7


def last_sync_hours_ago(s: Snapshot) -> float | None:
    if s.last_synced_us is None:
        return None
    return (s.row_us - s.last_synced_us) / US_PER_HOUR


def data_completeness(s: Snapshot) -> float:
    w = s.windows[Window.D7]
    synced = w.total("synced")
    return w.total("metrics_present") / (3 * max(synced, SYNC_TARGET_DAYS_7D))


NAMED: Final[dict[str, Formula]] = {
    "avg_bedtime_hour_7d": avg_bedtime_hour,
    "sleep_consistency_7d": sleep_consistency,
    "sleep_debt_minutes": sleep_debt,
    "exercise_consistency_score": exercise_consistency,
    "workout_variety_score_7d": workout_variety,
    "social_engagement_score": social_engagement,
    "avg_post_likes": avg_post_likes,
    "comment_rate_7d": comment_rate,
    "last_sync_hours_ago": last_sync_hours_ago,
    "data_completeness_score": data_completeness,
}

_GENERIC: Final[dict[Aggregate, Callable[[FeatureSpec], Formula]]] = {
    Aggregate.COUNT: _count,
    Aggregate.SUM: _sum,
    Aggregate.MEAN: _mean,
    Aggregate.DISTINCT: _distinct,
    Aggregate.MODE: _mode,
}


def formula_of(spec: FeatureSpec) -> Formula:
    if spec.name in NAMED:
        return NAMED[spec.name]
    try:
        return _GENERIC[spec.aggregate](spec)
    except KeyError:
        raise LookupError(f"{spec.name}: a {spec.aggregate.value} needs a named formula") from None


def compile_view(view_name: str) -> tuple[tuple[str, Formula], ...]:
    return tuple((spec.name, formula_of(spec)) for spec in features_of(view_name))


def compute(formulas: tuple[tuple[str, Formula], ...], snapshot: Snapshot) -> dict[str, Any]:
    return {name: formula(snapshot) for name, formula in formulas}
