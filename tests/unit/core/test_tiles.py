"""Tile arithmetic: partials add, merge and subtract exactly, and survive encoding."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest

from stream.catalog import TILE, Window
from stream.core.tiles import (
    EVENTS,
    TILE_US,
    Partial,
    add,
    category_key,
    decode,
    first_tile,
    fold,
    merge,
    subtract,
    sum_key,
    tile_of,
    tiles_in,
)

S = sum_key("duration_minutes")
WALK = category_key("activity_type", "walking")


@pytest.mark.parametrize(
    ("partial", "other", "expected"),
    [
        ({}, {}, {}),
        ({}, {EVENTS: 1, S: 30}, {EVENTS: 1, S: 30}),
        ({EVENTS: 1, S: 30}, {EVENTS: 2, S: 15}, {EVENTS: 3, S: 45}),
        # A key that reaches 0 is absent, so a folded and a slid window hold the same keys.
        ({EVENTS: 1, S: 30}, {EVENTS: -1, S: -30}, {}),
        ({WALK: 2}, {S: 5}, {WALK: 2, S: 5}),
    ],
)
def test_merge(partial: Partial, other: Partial, expected: Partial) -> None:
    merge(partial, other)
    assert partial == expected


@pytest.mark.parametrize(
    ("partial", "other", "expected"),
    [
        ({EVENTS: 3, S: 45}, {EVENTS: 2, S: 15}, {EVENTS: 1, S: 30}),
        ({EVENTS: 1, S: 30, WALK: 1}, {EVENTS: 1, S: 30, WALK: 1}, {}),
        ({EVENTS: 2}, {S: 10}, {EVENTS: 2, S: -10}),  # never meant to happen; still exact
    ],
)
def test_subtract(partial: Partial, other: Partial, expected: Partial) -> None:
    subtract(partial, other)
    assert partial == expected


@pytest.mark.parametrize(
    ("deltas", "expected"),
    [
        ((), {}),
        (((EVENTS, 1), (S, 30_000_000_000)), {EVENTS: 1, S: 30_000_000_000}),
        (((EVENTS, 1), (EVENTS, 1)), {EVENTS: 2}),
    ],
)
def test_add_an_events_deltas(deltas: tuple[tuple[str, int], ...], expected: Partial) -> None:
    partial: Partial = {}
    add(partial, deltas)
    assert partial == expected


def test_fold_of_merged_partials_equals_merging_in_any_order() -> None:
    parts: list[Partial] = [{EVENTS: 1, S: 10}, {EVENTS: 2, WALK: 1}, {EVENTS: -3, S: -10}]
    assert fold(parts) == fold(reversed(parts)) == {WALK: 1}


@pytest.mark.parametrize(
    ("ts_us", "tile"),
    [
        (0, 0),
        (TILE_US - 1, 0),
        (TILE_US, 1),
        (-1, -1),  # floor division: a time before 1970 is in the tile before
        (-TILE_US, -1),
        (1_764_000_000_000_000, 1_764_000_000_000_000 // 3_600_000_000),
    ],
)
def test_tile_of(ts_us: int, tile: int) -> None:
    assert tile_of(ts_us) == tile


@pytest.mark.parametrize(
    ("window", "tiles"), [(Window.H24, 24), (Window.D7, 168), (Window.D30, 720)]
)
def test_tiles_in_a_window(window: Window, tiles: int) -> None:
    assert tiles_in(window) == tiles
    assert window.duration == tiles * TILE
    # The window of n tiles ending at tile t starts at t - n + 1: exactly n tiles.
    assert first_tile(tiles, 1_000) == 1_000 - tiles + 1


@pytest.mark.parametrize("window", [Window.ALL_TIME, Window.NOW_RELATIVE])
def test_windows_that_are_not_tiled_have_no_tile_count(window: Window) -> None:
    with pytest.raises(ValueError, match="not a tiled window"):
        tiles_in(window)


@pytest.mark.parametrize(
    ("written", "partial"),
    [
        ({}, {}),
        ({EVENTS: 1, S: 30_000_000_000, WALK: 1}, {EVENTS: 1, S: 30_000_000_000, WALK: 1}),
        # The JSON forms wrote a square past 64 bits as a string.
        ({EVENTS: 1, "q:bedtime_hours_from_noon": str(2**70)},
         {EVENTS: 1, "q:bedtime_hours_from_noon": 2**70}),
    ],
)  # fmt: skip
def test_decode_reads_the_json_forms(written: dict[str, int | str], partial: Partial) -> None:
    assert decode(orjson.loads(orjson.dumps(written))) == partial


def test_decode_reads_the_first_changelog_form() -> None:
    nested = {"n": 2, "s": {"duration_minutes": 40}, "nn": {"duration_minutes": 2}, "q": {},
              "c": {"activity_type": {"walking": 2, "reading": 0}}}  # fmt: skip
    assert decode(nested) == {EVENTS: 2, S: 40, "nn:duration_minutes": 2, WALK: 2}


def test_one_hour_tiles() -> None:
    assert timedelta(microseconds=TILE_US) == TILE == timedelta(hours=1)
