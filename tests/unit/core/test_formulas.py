"""Each formula of the catalog against hand-worked windows: a table of cases per formula."""

from __future__ import annotations

import math
from typing import Any

import pytest

from stream.catalog import FEATURES
from stream.core.formulas import (
    D7,
    D30,
    H24,
    Snapshot,
    avg_bedtime_hour,
    avg_post_likes,
    comment_rate,
    data_completeness,
    exercise_consistency,
    formula_of,
    last_sync_hours_ago,
    sleep_consistency,
    sleep_debt,
    social_engagement,
    workout_variety,
)
from stream.core.observe import SCALE
from stream.core.tiles import (
    EVENTS,
    Partial,
    category_key,
    nn_key,
    square_key,
    sum_key,
)

ROW_TILE = 500_000
HOUR_US = 3_600_000_000


def measure(name: str, *values: float) -> Partial:
    """A partial of events that each had `name` (in nano-units, as the tiles keep it)."""
    scaled = [round(v * SCALE) for v in values]
    partial: Partial = {EVENTS: len(values), nn_key(name): len(values)}
    if any(scaled):
        partial[sum_key(name)] = sum(scaled)
    squares = sum(s * s for s in scaled)
    if squares:
        partial[square_key(name)] = squares
    return partial


def counts(column: str, **per_value: int) -> Partial:
    partial: Partial = {EVENTS: sum(per_value.values())}
    for value, n in per_value.items():
        partial[category_key(column, value)] = n
    return partial


def at(
    window: int = D7,
    partial: Partial | None = None,
    *,
    tiles: dict[int, Partial] | None = None,
    last_synced_us: int | None = None,
    friend_delta: int = 0,
) -> Snapshot:
    windows: list[Partial] = [{}, {}, {}]
    if partial is not None:
        windows[window] = partial
    return Snapshot(
        windows=windows,
        order=sorted(tiles or {}),
        row_tile=ROW_TILE,
        row_us=ROW_TILE * HOUR_US + 1_800_000_000,
        friend_delta=friend_delta,
        last_synced_us=last_synced_us,
    )


def value_of(name: str, snapshot: Snapshot) -> Any:
    (spec,) = [f for f in FEATURES if f.name == name]
    return formula_of(spec)(snapshot)


@pytest.mark.parametrize(
    ("types", "expected"),
    [
        ({}, None),
        ({"running": 3}, 0.0),
        ({"running": 1, "yoga": 1}, math.log(2) / math.log(8)),
        ({t: 2 for t in ("a", "b", "c", "d", "e", "f", "g", "h")}, 1.0),
    ],
)
def test_workout_variety(types: dict[str, int], expected: float | None) -> None:
    got = workout_variety(at(D7, counts("exercise_type", **types) if types else {}))
    if expected is None:
        assert got is None
    else:
        assert got is not None and got == pytest.approx(expected, abs=1e-12)
        # One type is an entropy of zero, not of minus zero (what make demo once printed).
        assert math.copysign(1.0, got) == 1.0


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [((), None), ((480, 480), 0.0), ((420, 300), 240.0), ((600,), 0.0)],
)
def test_sleep_debt(minutes: tuple[float, ...], expected: float | None) -> None:
    partial = measure("duration_minutes", *minutes) if minutes else {}
    assert sleep_debt(at(D7, partial)) == expected


@pytest.mark.parametrize(
    ("bedtimes_from_noon", "expected"),
    [
        ((), None),
        ((11.0, 11.0, 11.0), 1.0),
        ((10.0, 12.0), 0.5),  # population std 1 h of the 2 h that scores 0
        ((8.0, 12.0), 0.0),
        ((6.0, 14.0), 0.0),  # never below 0
    ],
)
def test_sleep_consistency(bedtimes_from_noon: tuple[float, ...], expected: float | None) -> None:
    partial = measure("bedtime_hours_from_noon", *bedtimes_from_noon) if bedtimes_from_noon else {}
    got = sleep_consistency(at(D7, partial))
    assert got == (None if expected is None else pytest.approx(expected))


@pytest.mark.parametrize(
    ("bedtimes_from_noon", "hour"),
    [((11.0, 13.0), 0.0), ((10.5,), 22.5), ((0.0,), 12.0), ((), None)],
)
def test_avg_bedtime_hour_wraps_at_midnight(
    bedtimes_from_noon: tuple[float, ...], hour: float | None
) -> None:
    partial = measure("bedtime_hours_from_noon", *bedtimes_from_noon) if bedtimes_from_noon else {}
    assert avg_bedtime_hour(at(D7, partial)) == hour


@pytest.mark.parametrize(
    ("weight", "expected"), [(0.0, 0.0), (30.0, 1 - math.exp(-1)), (300.0, 1 - math.exp(-10))]
)
def test_social_engagement(weight: float, expected: float) -> None:
    partial = measure("engagement_weight", weight)
    assert social_engagement(at(D7, partial)) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("actions", "likes_per_post"),
    [({}, None), ({"like_received": 4}, None), ({"post": 2, "like_received": 5}, 2.5)],
)
def test_avg_post_likes(actions: dict[str, int], likes_per_post: float | None) -> None:
    assert avg_post_likes(at(D30, counts("action", **actions))) == likes_per_post


@pytest.mark.parametrize(("comments", "rate"), [(0, 0.0), (7, 1.0), (3, 3 / 7)])
def test_comment_rate(comments: int, rate: float) -> None:
    assert comment_rate(at(D7, counts("action", comment=comments))) == rate


@pytest.mark.parametrize(("synced_hours_before", "hours"), [(None, None), (0.5, 0.5), (30.0, 30.0)])
def test_last_sync_hours_ago(synced_hours_before: float | None, hours: float | None) -> None:
    snapshot = at()
    synced = (
        None
        if synced_hours_before is None
        else snapshot.row_us - round(synced_hours_before * HOUR_US)
    )
    assert last_sync_hours_ago(at(last_synced_us=synced)) == hours


@pytest.mark.parametrize(
    ("syncs", "present_each", "score"),
    [(0, 0, 0.0), (7, 3, 1.0), (3, 3, 9 / 21), (14, 3, 1.0), (7, 1, 7 / 21)],
)
def test_data_completeness(syncs: int, present_each: int, score: float) -> None:
    partial: Partial = {}
    if syncs:
        partial = measure("synced", *[1.0] * syncs)
        partial.update(measure("metrics_present", *[present_each] * syncs))
    assert data_completeness(at(D7, partial)) == pytest.approx(score)


@pytest.mark.parametrize(
    ("hours_before", "score"),
    [
        ((), 0.0),
        ((0, 1, 2), 1 / (30 * 3 / 7)),  # three workouts in one day-slice: one active day
        ((0, 24, 48), 3 / (30 * 3 / 7)),
        (tuple(range(0, 24 * 30, 24)), 1.0),  # capped at 1
        ((24 * 30,), 0.0),  # just outside the 30-day window
    ],
)
def test_exercise_consistency_counts_day_slices_back_from_t(
    hours_before: tuple[int, ...], score: float
) -> None:
    tiles = {ROW_TILE - h: {EVENTS: 1} for h in hours_before}
    assert exercise_consistency(at(tiles=tiles)) == pytest.approx(score)


@pytest.mark.parametrize(
    ("name", "window", "partial", "expected"),
    [
        ("activity_count_24h", H24, {}, 0),
        ("activity_count_7d", D7, measure("duration_minutes", 10, 20), 2),
        ("total_minutes_30d", D30, measure("duration_minutes", 10, 20.5), 30.5),
        ("total_minutes_24h", H24, {}, 0.0),
        ("avg_energy_7d", D7, measure("energy_level", 4, 7), 5.5),
        ("avg_energy_7d", D7, {}, None),
        ("activity_diversity_7d", D7, counts("activity_type", walking=2, reading=1), 2),
        # Ties go to the alphabetically first type.
        ("most_common_activity_24h", H24, counts("activity_type", work=2, cooking=2), "cooking"),
        ("most_common_activity_24h", H24, {}, None),
        ("high_intensity_count_7d", D7, counts("intensity", high=3, low=4), 3),
        ("posts_7d", D7, counts("action", post=2, comment=5), 2),
    ],
)
def test_generic_aggregates(name: str, window: int, partial: Partial, expected: Any) -> None:
    assert value_of(name, at(window, partial)) == expected


@pytest.mark.parametrize(("delta", "friends"), [(0, 0), (3, 3), (-2, 0)])
def test_friend_count_never_below_zero(delta: int, friends: int) -> None:
    assert value_of("friend_count", at(friend_delta=delta)) == friends
