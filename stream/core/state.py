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

Durable form: a state is several changelog records, not one. The head (`type|user`) holds the
clocks; each day of tiles is a chunk (`type@<day>|user`). An event rewrites the head and its
day's chunk, not every tile the state holds: over 30 days, a chunk is about a thirtieth of the
state. A day with a record gets a tombstone once it has wholly left the 30-day window.
`changes()` returns the records of what changed since it was last called; the worker keeps them
in one Kafka record batch, so a state is restored as of one flush, never part old and part new.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Final

import orjson

from stream.catalog import VIEWS, EventType, Window
from stream.core.codec import (
    Split,
    decode_head,
    decode_tile,
    encode_chunk,
    encode_head,
    encode_tile,
    is_binary,
    split_chunk,
)
from stream.core.formulas import WINDOWS, Formula, Snapshot, compile_view, compute
from stream.core.observe import Observation, id_hash
from stream.core.records import Record, Row
from stream.core.tiles import (
    TILE_US,
    Partial,
    Tile,
    add,
    decode,
    first_tile,
    merge,
    subtract,
    tile_of,
    tiles_in,
)

WINDOW_TILES: Final = tuple(tiles_in(w) for w in WINDOWS)  # ascending: nested windows
RETAINED_TILES: Final = tiles_in(Window.D30)
VIEW_OF: Final[dict[str, str]] = {t: v.name for v in VIEWS for t in v.events}
FORMULAS: Final[dict[str, tuple[tuple[str, Formula], ...]]] = {
    v.name: compile_view(v.name) for v in VIEWS
}


# Tiles per chunk record: a week (docs/decisions/0021-compact-state.md). The JSON forms before
# the binary one had a record per day (LEGACY_DAY_TILES), under keys of their own.
CHUNK_TILES: Final = 168
LEGACY_DAY_TILES: Final = 24
TILES_PER_DAY: Final = 24
# Tiles this near the newest keep their partials decoded; older ones are frozen (Tile): the
# 24-hour window slides over decoded tiles, the 7- and 30-day windows decode the one tile that
# leaves them.
HOT_TILES: Final = 26


def head_key(user_id: str, event_type: str) -> bytes:
    return f"{event_type}|{user_id}".encode()


def chunk_key(user_id: str, event_type: str, chunk: int) -> bytes:
    # "#" and "@" are in no event type: a key is a head when its first field is an event type.
    return f"{event_type}#{chunk}|{user_id}".encode()


def legacy_day_key(user_id: str, event_type: str, day: int) -> bytes:
    """The key of a day's record in the JSON forms: read once, then removed."""
    return f"{event_type}@{day}|{user_id}".encode()


class Outcome(Enum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    TOO_LATE = "too_late"


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
    # Running folds of the tiles in each window (indexed like WINDOWS), valid for windows ending
    # at `aligned_tile`. Sums are exact integers, so sliding them never drifts from a full fold.
    windows: list[Partial] = field(default_factory=list)
    aligned_tile: int | None = None
    # The Kafka partition this user's events arrive on: where its changelog record goes.
    partition: int | None = None
    # The tiles' indices, ascending: windows slide and tiles are evicted by bisection.
    order: list[int] = field(default_factory=list)
    # Chunks whose tiles changed, and chunks that left the window, since the last `changes()`;
    # None while there are none (most states are idle, and an empty set is 216 bytes).
    changed: set[int] | None = None
    dropped: set[int] | None = None
    # The day the window has left only partly: its record keeps the tiles evicted from it
    # (restore skips them) until the window leaves the whole day.
    partly_out: int | None = None
    # Flushes whose records of this state the local store does not hold yet: while there are
    # any, the worker keeps the state in memory (stream/worker/runtime.py).
    pending: int = 0
    # The day whose start the oldest chunk was last rewritten at, dropping the tiles the window
    # had left: at most once a day, so a stored chunk holds less than a day outside the window.
    trimmed_day: int | None = None
    # Days of the JSON forms' day records this state was read from: removed with its next
    # changes, once its chunks are written in the binary form.
    legacy_days: list[int] | None = None
    # Tiles below this index are frozen, but for those a late event thawed since the last
    # `changes()`, which freezes them again.
    frozen_below: int | None = None
    thawed: list[int] | None = None

    def changes(self) -> list[Record]:
        """The records that make the changelog hold this state: the head, changed chunks,
        tombstones of dropped ones. The running windows are rebuilt from the tiles."""
        user_id, event_type = self.user_id, self.event_type
        records: list[Record] = [(head_key(user_id, event_type), self.head())]
        if self.changed is not None:
            for chunk in self.changed:
                records.append((chunk_key(user_id, event_type, chunk), self.chunk(chunk)))
            self.changed = None
        if self.dropped is not None:
            for chunk in self.dropped:
                records.append((chunk_key(user_id, event_type, chunk), None))
            self.dropped = None
        if self.legacy_days is not None:
            for day in self.legacy_days:
                records.append((legacy_day_key(user_id, event_type, day), None))
            self.legacy_days = None
        self._freeze()
        return records

    def records(self) -> dict[bytes, bytes]:
        """Every record of the state (tests and benchmarks; the worker sends `changes()`)."""
        user_id, event_type = self.user_id, self.event_type
        records = {head_key(user_id, event_type): self.head()}
        for chunk in sorted({i // CHUNK_TILES for i in self.order}):
            records[chunk_key(user_id, event_type, chunk)] = self.chunk(chunk)
        return records

    def head(self) -> bytes:
        return encode_head(
            self.newest_us, self.last_row_us, self.last_synced_us, self.partition, self.friend_delta
        )

    def chunk(self, chunk: int) -> bytes:
        tiles = self.tiles
        first = chunk * CHUNK_TILES
        held = self._between(first, first + CHUNK_TILES - 1)
        return encode_chunk([self._fragment(i, tiles[i]) for i in held])

    @classmethod
    def restore(
        cls,
        user_id: str,
        event_type: EventType,
        head: bytes,
        record: Callable[[bytes], bytes | None],
    ) -> UserState:
        """The state from its head and `record(key)`, which reads a chunk (None when absent).

        Reads the binary form (stream/core/codec.py) and both JSON forms before it; a state read
        from JSON has every chunk rewritten in binary with its next changes.
        """
        state = cls(user_id, event_type)
        tiles: dict[int, Tile] = {}
        from_json = not is_binary(head)
        if from_json:
            data = orjson.loads(head)
            state.newest_us, state.last_row_us = data["n"], data["r"]
            state.friend_delta, state.last_synced_us = data["f"], data["s"]
            state.partition = data.get("p")
            whole = data.get("tiles")
            if whole is not None:
                # The first durable form, the whole state in one record.
                tiles = {int(i): Tile(decode(p), _hashes(ids)) for i, (p, ids) in whole.items()}
        else:
            newest, row, synced, partition, friends = decode_head(head)
            state.newest_us, state.last_row_us, state.last_synced_us = newest, row, synced
            state.partition, state.friend_delta = partition, friends
        if not tiles and state.newest_us is not None:
            newest_tile = state.newest_us // TILE_US
            first = first_tile(RETAINED_TILES, newest_tile)
            hot_from = newest_tile - HOT_TILES + 1
            # The JSON forms kept a record a day, the binary form a week.
            size = LEGACY_DAY_TILES if from_json else CHUNK_TILES
            key = legacy_day_key if from_json else chunk_key
            oldest = first // size
            read: list[int] = []
            for chunk in range(oldest, newest_tile // size + 1):
                raw = record(key(user_id, event_type, chunk))
                if raw is None:
                    continue
                read.append(chunk)
                found: Split
                if is_binary(raw):
                    found = split_chunk(event_type, chunk * size, raw, hot_from)
                else:
                    found = [
                        (int(i), decode(partial), _hashes(ids), None)
                        for i, (partial, ids) in orjson.loads(raw).items()
                    ]
                for index, partial, ids, fragment in found:
                    # A chunk the window left only partly still holds its evicted tiles.
                    if index >= first:
                        tiles[index] = Tile(partial, ids, fragment)
            state.frozen_below = hot_from
            if from_json:
                state.legacy_days = read
            elif read and read[0] == oldest:
                state.partly_out = oldest
        state.tiles = tiles
        state.order = sorted(tiles)
        if from_json:
            state.changed = {i // CHUNK_TILES for i in tiles}
        return state

    def apply(self, obs: Observation) -> tuple[Outcome, Row | None]:
        """Add one event; return what happened and, unless skipped, the row at the new R."""
        tile_index = obs.ts_us // TILE_US
        newest_us = self.newest_us
        if newest_us is not None and tile_index <= newest_us // TILE_US - RETAINED_TILES:
            return Outcome.TOO_LATE, None
        tile = self.tiles.get(tile_index)
        if tile is None:
            tile = self.tiles[tile_index] = Tile()
            order = self.order
            if not order or tile_index > order[-1]:
                order.append(tile_index)
            else:
                insort(order, tile_index)
        else:
            if tile.partial is None:
                self._thaw(tile_index, tile)
            if obs.id_hash in tile.ids:
                return Outcome.DUPLICATE, None
        row_us = self._next_row_time(obs.ts_us)
        row_tile = row_us // TILE_US
        # Move the windows to the new row tile before the event joins its tile: the tiles that
        # leave are subtracted as the windows hold them, and eviction comes after that.
        self._align(row_tile)
        deltas = obs.deltas
        partial = tile.partial
        assert partial is not None  # made or thawed above
        add(partial, deltas)
        tile.ids = (*tile.ids, obs.id_hash)
        tile.encoded = None
        changed = self.changed
        if changed is None:
            changed = self.changed = set()
        changed.add(tile_index // CHUNK_TILES)
        windows = self.windows
        for w, size in enumerate(WINDOW_TILES):
            if tile_index > row_tile - size:
                add(windows[w], deltas)
        self.friend_delta += obs.friend_delta
        if obs.synced and (self.last_synced_us is None or obs.ts_us > self.last_synced_us):
            self.last_synced_us = obs.ts_us
        if newest_us is None or obs.ts_us > newest_us:
            self.newest_us = obs.ts_us
            if newest_us is None or tile_index > newest_us // TILE_US:
                self._evict(tile_index)
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
        if self.aligned_tile is None:
            return self.last_row_us is not None  # restored: its windows are not folded yet
        return row_may_change(self.event_type, self.last_row_us, self.last_synced_us, now_us)

    def _next_row_time(self, candidate_us: int) -> int:
        row_us = candidate_us
        if self.last_row_us is not None and row_us <= self.last_row_us:
            row_us = self.last_row_us + 1
        self.last_row_us = row_us
        return row_us

    def _evict(self, newest_tile: int) -> None:
        order = self.order
        first = first_tile(RETAINED_TILES, newest_tile)
        gone = bisect_left(order, first)
        boundary = first // CHUNK_TILES  # the oldest week still in the window, wholly or partly
        partly = self.partly_out
        if not gone and (partly is None or partly == boundary):
            return
        # The weeks that had a record and are wholly out of the window now: their records go.
        # Only those: a user seen for three days sends no tombstones for the weeks before.
        left: set[int] = set()
        if gone:
            tiles = self.tiles
            for index in order[:gone]:
                del tiles[index]
                left.add(index // CHUNK_TILES)
            del order[:gone]
        if partly is not None:
            left.add(partly)
        self.partly_out = boundary if boundary in left else None
        left.discard(boundary)
        today = first // TILES_PER_DAY
        if self.partly_out is not None and self.trimmed_day != today and gone:
            # The oldest chunk held a day more of tiles the window has left: rewritten.
            self.trimmed_day = today
            changed = self.changed
            if changed is None:
                changed = self.changed = set()
            changed.add(boundary)
        if left:
            dropped = self.dropped
            if dropped is None:
                dropped = self.dropped = set()
            dropped.update(left)
            if self.changed is not None:
                self.changed.difference_update(left)

    def _between(self, first: int, last: int) -> list[int]:
        """Indices of the tiles held in [first, last]."""
        order = self.order
        return order[bisect_left(order, first) : bisect_right(order, last)]

    def _align(self, row_tile: int) -> None:
        """Make the windows those ending at `row_tile` (row tiles only move forward)."""
        aligned = self.aligned_tile
        if aligned == row_tile:
            return
        if aligned is None or row_tile - aligned >= WINDOW_TILES[-1]:
            self._realign(row_tile)
            return
        # Slide: add the tiles that enter each window and subtract those that leave it.
        tiles = self.tiles
        entering = [self._partial(tiles[i]) for i in self._between(aligned + 1, row_tile)]
        for partial, size in zip(self.windows, WINDOW_TILES, strict=True):
            for other in entering:
                merge(partial, other)
            for index in self._between(aligned - size + 1, row_tile - size):
                subtract(partial, self._partial(tiles[index]))
        self.aligned_tile = row_tile

    def _realign(self, row_tile: int) -> None:
        # The windows are nested (24h in 7d in 30d) and end at the same tile, so one pass from
        # the newest tile back folds them all: each tile is merged once, not once per window.
        tiles = self.tiles
        in_range = self._between(row_tile - WINDOW_TILES[-1] + 1, row_tile)
        running: Partial = {}
        windows: list[Partial] = []
        position = len(in_range) - 1
        for size in WINDOW_TILES:
            oldest = first_tile(size, row_tile)
            while position >= 0 and in_range[position] >= oldest:
                merge(running, self._partial(tiles[in_range[position]]))
                position -= 1
            windows.append(dict(running))
        self.windows = windows
        self.aligned_tile = row_tile

    def _partial(self, tile: Tile) -> Partial:
        """A tile's partial, decoded for the moment where the tile is frozen."""
        partial = tile.partial
        if partial is None:
            encoded = tile.encoded
            assert encoded is not None  # a frozen tile keeps its fragment
            partial = decode_tile(self.event_type, encoded)[0]
        return partial

    def _fragment(self, index: int, tile: Tile) -> bytes:
        encoded = tile.encoded
        if encoded is None:
            partial = tile.partial
            assert partial is not None  # only a frozen tile has no partial, and it is encoded
            hour = index % CHUNK_TILES  # in the week
            encoded = tile.encoded = encode_tile(self.event_type, hour, partial, tile.ids)
        return encoded

    def _thaw(self, index: int, tile: Tile) -> None:
        """Decode a frozen tile a late event lands in; frozen again by the next changes()."""
        encoded = tile.encoded
        assert encoded is not None
        tile.partial, tile.ids = decode_tile(self.event_type, encoded)
        thawed = self.thawed
        if thawed is None:
            thawed = self.thawed = []
        thawed.append(index)

    def _freeze(self) -> None:
        """Freeze the tiles that have fallen HOT_TILES behind the newest, and those thawed."""
        if self.newest_us is None:
            return
        below = self.newest_us // TILE_US - HOT_TILES + 1
        order, tiles = self.order, self.tiles
        start = 0 if self.frozen_below is None else bisect_left(order, self.frozen_below)
        indices = order[start : bisect_left(order, below)]
        if self.thawed is not None:
            indices += self.thawed
            self.thawed = None
        for index in indices:
            tile = tiles.get(index)
            if tile is not None and tile.partial is not None and index < below:
                self._fragment(index, tile)
                tile.partial = None
                tile.ids = ()
        if self.frozen_below is None or below > self.frozen_below:
            self.frozen_below = below

    def _row(self, row_us: int) -> Row:
        assert self.aligned_tile is not None
        snapshot = Snapshot(
            windows=self.windows,
            tiles=self.tiles,
            order=self.order,
            row_tile=self.aligned_tile,
            row_us=row_us,
            friend_delta=self.friend_delta,
            last_synced_us=self.last_synced_us,
        )
        view = VIEW_OF[self.event_type]
        return Row(view, self.user_id, row_us, compute(FORMULAS[view], snapshot))


def _hashes(ids: list[str]) -> tuple[int, ...]:
    """The ids of a JSON-form tile (event id strings), as the binary form keeps them."""
    return tuple(id_hash(one) for one in ids)


def row_may_change(
    event_type: str, last_row_us: int | None, last_synced_us: int | None, now_us: int
) -> bool:
    """Whether a state's row at `now_us` may differ from its last one, from its clocks alone:
    the windows end at the row's tile, so a row in the same tile is the same row."""
    if last_row_us is None:
        return False
    if event_type == "sync" and last_synced_us is not None:
        return True  # last_sync_hours_ago moves with the clock
    return tile_of(last_row_us) != tile_of(max(now_us, last_row_us + 1))
