"""Tile arithmetic: partial aggregates per hour of event time, and windows as folds over them.

Pure: no Faust, Redis or Postgres here. A window of n tiles at row time R holds the tiles
tile_of(R) - n + 1 ... tile_of(R); every event the state holds has a time <= R, so the current
tile never counts an event from after R.

A partial is one flat dict of integers, keyed by what it counts:

- `n`: events;
- `s:<measure>`, `nn:<measure>`, `q:<measure>`: a measure's sum, how many events had it, and the
  sum of its squares (SQUARED measures only);
- `c:<column>=<value>`: events whose categorical column had that value.

A missing key means 0 and a key that reaches 0 is deleted, so a measure no event in a window has
is absent (its mean is null), and a partial is exactly the same whether it was folded, slid tile
by tile, or decoded after a restart. Flat, the hot loops (an event into its tile and windows, a
tile into or out of a window) are one pass over (key, delta) pairs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from stream.catalog import TILE, Window

TILE_US: Final = int(TILE.total_seconds() * 1_000_000)

Partial = dict[str, int]
Deltas = tuple[tuple[str, int], ...]

EVENTS: Final = "n"
_SUM: dict[str, str] = {}
_NN: dict[str, str] = {}
_SQ: dict[str, str] = {}
# column -> value -> key, for every value seen in this process: distinct counts and modes walk
# a column's values through it. Every key a partial holds was registered when it was made.
_CATEGORY: dict[str, dict[str, str]] = {}


def sum_key(measure: str) -> str:
    key = _SUM.get(measure)
    if key is None:
        key = _SUM[measure] = f"s:{measure}"
    return key


def nn_key(measure: str) -> str:
    key = _NN.get(measure)
    if key is None:
        key = _NN[measure] = f"nn:{measure}"
    return key


def square_key(measure: str) -> str:
    key = _SQ.get(measure)
    if key is None:
        key = _SQ[measure] = f"q:{measure}"
    return key


def category_key(column: str, value: str) -> str:
    per_value = _CATEGORY.get(column)
    if per_value is None:
        per_value = _CATEGORY[column] = {}
    key = per_value.get(value)
    if key is None:
        key = per_value[value] = f"c:{column}={value}"
    return key


def category_keys(column: str) -> dict[str, str]:
    """value -> key for every value of `column` seen so far."""
    return _CATEGORY.get(column, {})


def register_key(key: str) -> str:
    """The interned key of a decoded partial (so its category is known to the formulas)."""
    kind, _, rest = key.partition(":")
    if kind == "c":
        column, _, value = rest.partition("=")
        return category_key(column, value)
    if kind == "s":
        return sum_key(rest)
    if kind == "nn":
        return nn_key(rest)
    if kind == "q":
        return square_key(rest)
    return EVENTS


def tile_of(ts_us: int) -> int:
    """Index of the tile holding `ts_us` (floor division, so times before 1970 work too)."""
    return ts_us // TILE_US


def tiles_in(window: Window) -> int:
    duration = window.duration
    if duration is None:
        raise ValueError(f"{window} is not a tiled window")
    return int(duration / TILE)


def first_tile(window_tiles: int, row_tile: int) -> int:
    """Oldest tile inside a window of `window_tiles` tiles whose newest tile is `row_tile`."""
    return row_tile - window_tiles + 1


def add(partial: Partial, deltas: Deltas) -> None:
    """One event's contribution (stream.core.observe.Observation.deltas)."""
    for key, delta in deltas:
        partial[key] = partial.get(key, 0) + delta


def merge(partial: Partial, other: Partial) -> None:
    for key, value in other.items():
        total = partial.get(key, 0) + value
        if total:
            partial[key] = total
        else:
            partial.pop(key, None)


def subtract(partial: Partial, other: Partial) -> None:
    """Remove events merged in before; what none of the rest has goes back to absent."""
    for key, value in other.items():
        left = partial.get(key, 0) - value
        if left:
            partial[key] = left
        else:
            partial.pop(key, None)


def fold(partials: Iterable[Partial]) -> Partial:
    total: Partial = {}
    for partial in partials:
        merge(total, partial)
    return total


def decode(data: dict[str, Any]) -> Partial:
    """A partial of the JSON forms of earlier versions (their integers past 64 bits were
    strings); the binary form is stream/core/codec.py's."""
    if "nn" in data and isinstance(data["nn"], dict):
        return _decode_nested(data)
    return {register_key(k): int(v) for k, v in data.items()}


def _decode_nested(data: dict[str, Any]) -> Partial:
    """The first changelog format: {"n", "s", "nn", "q", "c"} as nested dicts."""
    partial: Partial = {EVENTS: int(data["n"])} if data["n"] else {}
    for measure, value in data["s"].items():
        if value:
            partial[sum_key(measure)] = int(value)
    for measure, count in data["nn"].items():
        partial[nn_key(measure)] = int(count)
    for measure, value in data["q"].items():
        if int(value):
            partial[square_key(measure)] = int(value)
    for column, per_value in data["c"].items():
        for value, count in per_value.items():
            if count:
                partial[category_key(column, value)] = int(count)
    return partial


class Tile:
    """One recent hour of one user's events of one type: their partial aggregates and their ids.

    `ids` are the hashes of the events' ids (stream.core.observe.id_hash), in a tuple: a tile
    holds one or two. `encoded` caches the tile's part of its chunk record (stream.core.codec):
    a chunk is rewritten when one of its tiles changes, and the others have not. Tiles older
    than a day are not Tiles: a state keeps them frozen, as their encoded parts side by side in
    one bytes object (stream/core/state.py `Frozen`). A plain class, not a dataclass, so mypyc
    compiles the constructor.
    """

    __slots__ = ("encoded", "ids", "partial")

    def __init__(
        self,
        partial: Partial | None = None,
        ids: tuple[int, ...] = (),
        encoded: bytes | None = None,
    ) -> None:
        self.partial: Partial = {} if partial is None else partial
        self.ids: tuple[int, ...] = ids
        self.encoded: bytes | None = encoded
