"""Tile arithmetic: partial aggregates per hour of event time, and windows as folds over them.

Pure: no Faust, Redis or Postgres here. A window of n tiles at row time R holds the tiles
tile_of(R) - n + 1 ... tile_of(R); every event the state holds has a time <= R, so the current
tile never counts an event from after R.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from stream.catalog import TILE, Window
from stream.derive import SCALE, SQUARED, Observation

TILE_US: Final = int(TILE.total_seconds() * 1_000_000)


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


@dataclass(slots=True)
class Partial:
    """Partial aggregates of some events: count, sums, non-null counts, squares, value counts.

    Sums are integers in units of 1/SCALE and squares in units of 1/SCALE**2 (see
    stream.derive.SCALE), so adding and subtracting partials is exact.
    """

    n: int = 0
    sums: dict[str, int] = field(default_factory=dict)
    nn: dict[str, int] = field(default_factory=dict)
    squares: dict[str, int] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, obs: Observation) -> None:
        self.n += 1
        sums, nn = self.sums, self.nn
        for name, value in obs.numbers.items():
            sums[name] = sums.get(name, 0) + value
            nn[name] = nn.get(name, 0) + 1
            if name in SQUARED:
                self.squares[name] = self.squares.get(name, 0) + value * value
        for name, category in obs.categories.items():
            per_value = self.counts.setdefault(name, {})
            per_value[category] = per_value.get(category, 0) + 1

    def merge(self, other: Partial) -> None:
        self.n += other.n
        for name, value in other.sums.items():
            self.sums[name] = self.sums.get(name, 0) + value
        for name, count in other.nn.items():
            self.nn[name] = self.nn.get(name, 0) + count
        for name, value in other.squares.items():
            self.squares[name] = self.squares.get(name, 0) + value
        for name, per_value in other.counts.items():
            mine = self.counts.setdefault(name, {})
            for category, count in per_value.items():
                mine[category] = mine.get(category, 0) + count

    def subtract(self, other: Partial) -> None:
        """Remove events merged in before; a measure none of the rest has goes back to absent."""
        self.n -= other.n
        for name, count in other.nn.items():
            left = self.nn[name] - count
            if left:
                self.nn[name] = left
                self.sums[name] -= other.sums[name]
                if name in other.squares:
                    self.squares[name] -= other.squares[name]
            else:
                # As a fold without those events: no sum at all.
                del self.nn[name]
                self.sums.pop(name, None)
                self.squares.pop(name, None)
        for name, per_value in other.counts.items():
            mine = self.counts[name]
            for category, count in per_value.items():
                left = mine[category] - count
                if left:
                    mine[category] = left
                else:
                    del mine[category]
            if not mine:
                del self.counts[name]

    def total(self, name: str) -> float:
        """The sum of a measure (0.0 when no event had it)."""
        return self.sums.get(name, 0) / SCALE

    def mean(self, name: str) -> float | None:
        count = self.nn.get(name, 0)
        return self.sums[name] / (count * SCALE) if count else None

    def variance(self, name: str) -> float | None:
        """Population variance of a SQUARED measure, from exact integers (never negative)."""
        count = self.nn.get(name, 0)
        if not count:
            return None
        total = self.sums[name]
        return (count * self.squares[name] - total * total) / (count * count * SCALE * SCALE)

    def count_of(self, name: str, value: str) -> int:
        return self.counts.get(name, {}).get(value, 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "s": self.sums,
            "nn": self.nn,
            "q": {k: str(v) for k, v in self.squares.items()},
            "c": self.counts,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Partial:
        # Squares are strings: in units of 1/SCALE**2 they outgrow JSON's 64-bit integers.
        squares = {k: int(v) for k, v in data["q"].items()}
        return cls(data["n"], data["s"], data["nn"], squares, data["c"])


@dataclass(slots=True)
class Tile:
    """One hour of one user's events of one type: their partial aggregates and their ids."""

    partial: Partial = field(default_factory=Partial)
    ids: set[str] = field(default_factory=set)


def fold(partials: Iterable[Partial]) -> Partial:
    total = Partial()
    for partial in partials:
        total.merge(partial)
    return total
