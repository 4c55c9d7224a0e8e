"""The per-(user, event type) state: tiles, running windows, and the feature row after each event.

Pure and deterministic: the worker and `make replay` both drive it, so the same events in the same
order give the same rows. Rules, which the reference computation in the tests follows too:

- Row time. Every row gets R = max(event time, previous R + 1 microsecond): rows of one user and
  view are strictly increasing in time, so Feast's Redis guard (which drops a row not newer than
  the stored one) never drops a correction, and offline rows never share a key.
- Late events. An event older than the user's newest tile minus the 30-day window is archived but
  not aggregated (`Outcome.TOO_LATE`); any other late event lands in its own tile and the row at R
  includes it.
- Duplicates. Event ids are kept per tile, and a duplicate has the same time and so the same tile:
  an id already applied is skipped (`Outcome.DUPLICATE`) for as long as its tile is in the state.
- Bounded state. Tiles older than the 30-day window of the newest event are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Final

import orjson

from stream.catalog import VIEWS, EventType, Window
from stream.derive import Observation
from stream.features import Formula, Snapshot, compile_view, compute
from stream.tiles import Partial, Tile, first_tile, tile_of, tiles_in

WINDOWS: Final = (Window.H24, Window.D7, Window.D30)
WINDOW_TILES: Final = tuple(tiles_in(w) for w in WINDOWS)  # ascending: nested windows
RETAINED_TILES: Final = tiles_in(Window.D30)
VIEW_OF: Final[dict[str, str]] = {t: v.name for v in VIEWS for t in v.events}
FORMULAS: Final[dict[str, tuple[tuple[str, Formula], ...]]] = {
    v.name: compile_view(v.name) for v in VIEWS
}


# A full fold of the tiles after this many incremental slides bounds float rounding.
SLIDES_BETWEEN_FOLDS: Final = 64


def _indices(tiles: dict[int, Tile], first: int, last: int) -> list[int]:
    """Indices of the tiles held in [first, last], by whichever is shorter to walk."""
    if last - first + 1 <= len(tiles):
        return [i for i in range(first, last + 1) if i in tiles]
    return [i for i in tiles if first <= i <= last]


class Outcome(Enum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    TOO_LATE = "too_late"


@dataclass(frozen=True, slots=True)
class Row:
    """One feature row of one view: what is pushed online and appended offline."""

    view: str
    user_id: str
    row_us: int
    values: dict[str, Any]


@dataclass(slots=True)
class UserState:
    """Everything known about one user's events of one type."""

    user_id: str
    event_type: EventType
    tiles: dict[int, Tile] = field(default_factory=dict)
    newest_us: int | None = None
    last_row_us: int | None = None
    friend_delta: int = 0
    last_synced_us: int | None = None
    # Running folds of the tiles in each window, valid for windows ending at `aligned_tile`.
    windows: dict[Window, Partial] = field(default_factory=dict)
    aligned_tile: int | None = None
    _slides: int = 0  # slides since the last full fold
    # The Kafka partition this user's events arrive on: where its changelog record goes.
    partition: int | None = None

    def to_bytes(self) -> bytes:
        """The durable part (tiles and clocks); the running windows are rebuilt from the tiles."""
        return orjson.dumps(
            {
                "u": self.user_id,
                "t": self.event_type,
                "n": self.newest_us,
                "r": self.last_row_us,
                "f": self.friend_delta,
                "s": self.last_synced_us,
                "p": self.partition,
                "tiles": {
                    str(i): [t.partial.to_dict(), sorted(t.ids)] for i, t in self.tiles.items()
                },
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> UserState:
        data = orjson.loads(raw)
        tiles = {
            int(i): Tile(Partial.from_dict(partial), set(ids))
            for i, (partial, ids) in data["tiles"].items()
        }
        return cls(
            user_id=data["u"],
            event_type=data["t"],
            tiles=tiles,
            newest_us=data["n"],
            last_row_us=data["r"],
            friend_delta=data["f"],
            last_synced_us=data["s"],
            partition=data.get("p"),
        )

    def apply(self, obs: Observation) -> tuple[Outcome, Row | None]:
        """Add one event; return what happened and, unless skipped, the row at the new R."""
        tile_index = tile_of(obs.ts_us)
        if self.newest_us is not None:
            oldest_kept = first_tile(RETAINED_TILES, tile_of(self.newest_us))
            if tile_index < oldest_kept:
                return Outcome.TOO_LATE, None
        tile = self.tiles.get(tile_index)
        if tile is None:
            tile = self.tiles[tile_index] = Tile()
        elif obs.event_id in tile.ids:
            return Outcome.DUPLICATE, None
        row_us = self._next_row_time(obs.ts_us)
        row_tile = tile_of(row_us)
        # Move the windows to the new row tile before the event joins its tile: the tiles that
        # leave are subtracted as the windows hold them, and eviction comes after that.
        self._align(row_tile)
        tile.partial.add(obs)
        tile.ids.add(obs.event_id)
        for window, size in zip(WINDOWS, WINDOW_TILES, strict=True):
            if tile_index >= first_tile(size, row_tile):
                self.windows[window].add(obs)
        self.friend_delta += obs.friend_delta
        if obs.synced and (self.last_synced_us is None or obs.ts_us > self.last_synced_us):
            self.last_synced_us = obs.ts_us
        if self.newest_us is None or obs.ts_us > self.newest_us:
            self.newest_us = obs.ts_us
            self._evict()
        return Outcome.APPLIED, self._row(row_us)

    def row_at(self, now_us: int) -> Row | None:
        """The row at max(now, previous R + 1us) for the idle sweep; None without any state."""
        if self.last_row_us is None:
            return None
        row_us = self._next_row_time(now_us)
        self._align(tile_of(row_us))
        return self._row(row_us)

    def changes_by(self, now_us: int) -> bool:
        """Whether a row at `now_us` could differ from the last one (a tile left a window)."""
        if self.last_row_us is None:
            return False
        if self.event_type == "sync" and self.last_synced_us is not None:
            return True  # last_sync_hours_ago moves with the clock
        return self.aligned_tile != tile_of(max(now_us, self.last_row_us + 1))

    def _next_row_time(self, candidate_us: int) -> int:
        row_us = candidate_us
        if self.last_row_us is not None and row_us <= self.last_row_us:
            row_us = self.last_row_us + 1
        self.last_row_us = row_us
        return row_us

    def _evict(self) -> None:
        assert self.newest_us is not None
        oldest_kept = first_tile(RETAINED_TILES, tile_of(self.newest_us))
        for index in [i for i in self.tiles if i < oldest_kept]:
            del self.tiles[index]

    def _align(self, row_tile: int) -> None:
        """Make the windows those ending at `row_tile` (row tiles only move forward)."""
        aligned = self.aligned_tile
        if aligned == row_tile:
            return
        if (
            aligned is None
            or row_tile - aligned >= WINDOW_TILES[-1]
            or self._slides >= SLIDES_BETWEEN_FOLDS
        ):
            self._realign(row_tile)
            return
        # Slide: add the tiles that enter each window and subtract those that leave it. Counts
        # stay exact; float sums pick up rounding, which a full fold every
        # SLIDES_BETWEEN_FOLDS slides clears before it can grow.
        tiles = self.tiles
        for window, size in zip(WINDOWS, WINDOW_TILES, strict=True):
            partial = self.windows[window]
            for index in _indices(tiles, aligned + 1, row_tile):
                partial.merge(tiles[index].partial)
            for index in _indices(tiles, aligned - size + 1, row_tile - size):
                partial.subtract(tiles[index].partial)
        self.aligned_tile = row_tile
        self._slides += 1

    def _realign(self, row_tile: int) -> None:
        # The windows are nested (24h in 7d in 30d) and end at the same tile, so one pass from
        # the newest tile back folds them all: each tile is merged once, not once per window.
        tiles = self.tiles
        in_range = sorted(
            (i for i in tiles if row_tile - WINDOW_TILES[-1] < i <= row_tile), reverse=True
        )
        running = Partial()
        windows: dict[Window, Partial] = {}
        position = 0
        for window, size in zip(WINDOWS, WINDOW_TILES, strict=True):
            oldest = first_tile(size, row_tile)
            while position < len(in_range) and in_range[position] >= oldest:
                running.merge(tiles[in_range[position]].partial)
                position += 1
            snapshot = Partial()
            snapshot.merge(running)
            windows[window] = snapshot
        self.windows = windows
        self.aligned_tile = row_tile
        self._slides = 0

    def _row(self, row_us: int) -> Row:
        assert self.aligned_tile is not None
        snapshot = Snapshot(
            windows=self.windows,
            tiles=self.tiles,
            row_tile=self.aligned_tile,
            row_us=row_us,
            friend_delta=self.friend_delta,
            last_synced_us=self.last_synced_us,
        )
        view = VIEW_OF[self.event_type]
        return Row(view, self.user_id, row_us, compute(FORMULAS[view], snapshot))
