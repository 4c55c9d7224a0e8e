"""Feature values from folded tiles, one formula per catalog feature: pure functions.

Generic aggregates (count, sum, mean, distinct, mode) follow the catalog's `aggregate`, `column`
and `value`; scores, ratios and 'latest' features have a named formula here, written from the
catalog's definition text. `compile_view` turns a view into a list of (name, formula) once.

mypyc compiles this module (stream/core/native.py). Every division goes through `ratio` (a test
holds it so): compiled, `int / int` converts both ints to doubles first, which rounds twice
where Python rounds once, and the windows' nano-unit sums pass 2**53.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
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
from stream.core.observe import SCALE
from stream.core.tiles import (
    EVENTS,
    Partial,
    category_key,
    category_keys,
    first_tile,
    nn_key,
    square_key,
    sum_key,
    tiles_in,
)

US_PER_HOUR: Final = 3_600_000_000
TILES_PER_DAY: Final = 24
# The windows a state keeps, newest tile last, in this order (nested: 24h in 7d in 30d).
WINDOWS: Final = (Window.H24, Window.D7, Window.D30)
WINDOW_INDEX: Final = {w: i for i, w in enumerate(WINDOWS)}
H24, D7, D30 = range(3)


class Snapshot:
    """What the formulas see at row time R: folded windows and the facts outside them.

    A plain class, not a dataclass: mypyc compiles this `__init__` (one is built per row).
    """

    __slots__ = (
        "friend_delta",
        "last_synced_us",
        "order",
        "row_tile",
        "row_us",
        "windows",
    )

    def __init__(
        self,
        windows: Sequence[Partial],  # indexed like WINDOWS
        order: Sequence[int],  # the indices of the tiles the state holds, ascending
        row_tile: int,
        row_us: int,
        friend_delta: int,
        last_synced_us: int | None,
    ) -> None:
        self.windows = windows
        self.order = order
        self.row_tile = row_tile
        self.row_us = row_us
        self.friend_delta = friend_delta
        self.last_synced_us = last_synced_us


Formula = Callable[[Snapshot], Any]


def ratio(a: Any, b: Any) -> float:
    """a / b as Python divides: typed Any, so that compiled it stays Python's division, which
    rounds int / int once, exactly."""
    quotient: float = a / b
    return quotient


def total(partial: Partial, measure: str) -> float:
    """The sum of a measure (0.0 when no event had it)."""
    return ratio(partial.get(sum_key(measure), 0), SCALE)


def mean(partial: Partial, measure: str) -> float | None:
    count = partial.get(nn_key(measure), 0)
    return ratio(partial.get(sum_key(measure), 0), count * SCALE) if count else None


def variance(partial: Partial, measure: str) -> float | None:
    """Population variance of a SQUARED measure, from exact integers (never negative)."""
    count = partial.get(nn_key(measure), 0)
    if not count:
        return None
    s = partial.get(sum_key(measure), 0)
    return ratio(count * partial.get(square_key(measure), 0) - s * s, count * count * SCALE * SCALE)


def count_of(partial: Partial, column: str, value: str) -> int:
    return partial.get(category_key(column, value), 0)


def value_counts(partial: Partial, column: str) -> dict[str, int]:
    """The values of `column` the partial counts (each at least once)."""
    return {
        value: count
        for value, key in category_keys(column).items()
        if (count := partial.get(key, 0)) > 0
    }


def _count(spec: FeatureSpec) -> Formula:
    w, column, value = WINDOW_INDEX[spec.window], spec.column, spec.value
    if value is None:
        return lambda s: s.windows[w].get(EVENTS, 0)
    assert column is not None
    key = category_key(column, value)
    return lambda s: s.windows[w].get(key, 0)


def _sum(spec: FeatureSpec) -> Formula:
    column = spec.column
    assert column is not None
    if spec.window is Window.ALL_TIME:  # friend_count: the running balance, never below zero
        return lambda s: max(0, s.friend_delta)
    w, key = WINDOW_INDEX[spec.window], sum_key(column)
    return lambda s: ratio(s.windows[w].get(key, 0), SCALE)


def _mean(spec: FeatureSpec) -> Formula:
    w, column = WINDOW_INDEX[spec.window], spec.column
    assert column is not None
    return lambda s: mean(s.windows[w], column)


def _distinct(spec: FeatureSpec) -> Formula:
    w, column = WINDOW_INDEX[spec.window], spec.column
    assert column is not None
    return lambda s: len(value_counts(s.windows[w], column))


def _mode(spec: FeatureSpec) -> Formula:
    w, column = WINDOW_INDEX[spec.window], spec.column
    assert column is not None

    def mode(s: Snapshot) -> str | None:
        counts = value_counts(s.windows[w], column)
        # Most frequent first; a tie goes to the alphabetically first value.
        return min(counts, key=lambda v: (-counts[v], v)) if counts else None

    return mode


def avg_bedtime_hour(s: Snapshot) -> float | None:
    m = mean(s.windows[D7], "bedtime_hours_from_noon")
    return None if m is None else (m + 12) % 24


def sleep_consistency(s: Snapshot) -> float | None:
    v = variance(s.windows[D7], "bedtime_hours_from_noon")
    if v is None:
        return None
    return max(0.0, 1 - ratio(math.sqrt(v), BEDTIME_STD_FOR_ZERO_CONSISTENCY_H))


def sleep_debt(s: Snapshot) -> float | None:
    w = s.windows[D7]
    n = w.get(EVENTS, 0)
    if n == 0:
        return None
    return max(0.0, SLEEP_TARGET_MINUTES * n - total(w, "duration_minutes"))


def active_days_30d(s: Snapshot) -> int:
    oldest = first_tile(tiles_in(Window.D30), s.row_tile)
    order = s.order
    # A state holds a tile only for an hour with an event in it: every tile counts.
    days = {
        (s.row_tile - index) // TILES_PER_DAY
        for index in order[bisect_left(order, oldest) : bisect_right(order, s.row_tile)]
    }
    return len(days)


def exercise_consistency(s: Snapshot) -> float:
    return min(1.0, ratio(active_days_30d(s), EXERCISE_TARGET_ACTIVE_DAYS_30D))


def workout_variety(s: Snapshot) -> float | None:
    counts = list(value_counts(s.windows[D7], "exercise_type").values())
    n = sum(counts)
    if n == 0:
        return None
    # 0.0 minus, not unary minus: one type's entropy is 0.0, where -sum() would be -0.0.
    entropy = 0.0 - sum(ratio(c, n) * math.log(ratio(c, n)) for c in counts)
    return ratio(entropy, math.log(EXERCISE_TYPES_COUNT))


def social_engagement(s: Snapshot) -> float:
    weight = total(s.windows[D7], "engagement_weight")
    return 1 - math.exp(ratio(-weight, SOCIAL_ENGAGEMENT_SCALE))


def avg_post_likes(s: Snapshot) -> float | None:
    w = s.windows[D30]
    posts = count_of(w, "action", "post")
    return ratio(count_of(w, "action", "like_received"), posts) if posts else None


def comment_rate(s: Snapshot) -> float:
    return ratio(count_of(s.windows[D7], "action", "comment"), 7)


def last_sync_hours_ago(s: Snapshot) -> float | None:
    if s.last_synced_us is None:
        return None
    return ratio(s.row_us - s.last_synced_us, US_PER_HOUR)


def data_completeness(s: Snapshot) -> float:
    w = s.windows[D7]
    synced = total(w, "synced")
    return ratio(total(w, "metrics_present"), 3 * max(synced, SYNC_TARGET_DAYS_7D))


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
