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
clocks; each week of tiles is a chunk (`type#<week>|user`). An event rewrites the head and its
week's chunk, not every tile the state holds: over 30 days, a chunk is about a fifth of the
state. A week with a record gets a tombstone once it has wholly left the 30-day window.
`changes()` returns the records of what changed since it was last called; the worker keeps them
in one Kafka record batch, so a state is restored as of one flush, never part old and part new.

In memory, only the newest two hours' tiles are decoded (`Tile`); older ones are frozen (`Frozen`),
and the records are the same bytes whichever a tile is.
"""

from __future__ import annotations

from array import array
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
# Tiles this near the newest keep their partials decoded; older ones are frozen (`Frozen`), and
# each window decodes the one tile that leaves it. Two, not a day's 26: a decoded tile is ~8x its
# fragment, and decoding the tile leaving the 24-hour window too cost no measurable rate
# (docs/decisions/0021-compact-state.md). The newest hour and the one before it take the events
# that arrive a little late without thawing.
HOT_TILES: Final = 2


def head_key(user_id: str, event_type: str) -> bytes:
    return f"{event_type}|{user_id}".encode()


def chunk_key(user_id: str, event_type: str, chunk: int) -> bytes:
    # "#" and "@" are in no event type: a key is a head when its first field is an event type.
    return f"{event_type}#{chunk}|{user_id}".encode()


def legacy_day_key(user_id: str, event_type: str, day: int) -> bytes:
    """The key of a day's record in the JSON forms: read once, then removed."""
    return f"{event_type}@{day}|{user_id}".encode()


def _no_tiles() -> array[int]:
    return array("q")


class Frozen:
    """A state's tiles older than a day: their chunk fragments (stream/core/codec.py
    `encode_tile`) side by side in one bytes object, ascending by tile index.

    Invariant: `indices[k]` is the k-th frozen tile and `ends[k]` the end of its fragment in
    `blob` (it starts where the one before ends). A Tile, its partial dict and its place in a
    dict of tiles cost ~200 bytes an hour of history; here a tile costs its fragment (~25
    bytes) and 12 bytes of index (docs/decisions/0021-compact-state.md).
    """

    __slots__ = ("blob", "ends", "indices")

    def __init__(self) -> None:
        self.blob = b""
        self.indices: array[int] = array("q")
        self.ends: array[int] = array("I")

    def find(self, index: int) -> int:
        """The position of tile `index`, or -1 when it is not frozen."""
        indices = self.indices
        position = bisect_left(indices, index)
        if position < len(indices) and indices[position] == index:
            return position
        return -1

    def start(self, position: int) -> int:
        return self.ends[position - 1] if position else 0

    def fragment(self, position: int) -> bytes:
        return self.blob[self.start(position) : self.ends[position]]

    def put(self, index: int, fragment: bytes) -> None:
        """Freeze tile `index` as `fragment`, in its place, over its old fragment if any."""
        indices, ends = self.indices, self.ends
        size = len(fragment)
        if not indices or index > indices[-1]:
            self.blob += fragment
            indices.append(index)
            ends.append(len(self.blob))
            return
        position = bisect_left(indices, index)
        start = self.start(position)
        if indices[position] == index:
            end = ends[position]
            shift = size - (end - start)
            self.blob = self.blob[:start] + fragment + self.blob[end:]
        else:
            shift = size
            self.blob = self.blob[:start] + fragment + self.blob[start:]
            indices.insert(position, index)
            ends.insert(position, start)
        for k in range(position, len(ends)):
            ends[k] += shift

    def drop_below(self, first: int) -> None:
        """Forget the tiles before `first` (they left the 30-day window)."""
        gone = bisect_left(self.indices, first)
        if not gone:
            return
        cut = self.ends[gone - 1]
        self.blob = self.blob[cut:]
        del self.indices[:gone]
        self.ends = array("I", [end - cut for end in self.ends[gone:]])


class Outcome(Enum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    TOO_LATE = "too_late"


@dataclass(slots=True)
class UserState:
    """Everything known about one user's events of one type."""

    user_id: str
    event_type: EventType
    # The tiles of the last two hours (and those a late event thawed), decoded; older are frozen.
    tiles: dict[int, Tile] = field(default_factory=dict)
    frozen: Frozen | None = None
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
    # Every tile's index, hot or frozen, ascending: windows slide and tiles are evicted by
    # bisection. An array: 8 bytes a tile, where a list of ints costs 40.
    order: array[int] = field(default_factory=_no_tiles)
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
    # Tiles below this index are frozen, but for those a late event thawed or made since the
    # last `changes()`, which freezes them (again).
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
        tiles, frozen = self.tiles, self.frozen
        first = chunk * CHUNK_TILES
        fragments: list[bytes] = []
        # The frozen tiles' fragments are sliced from the blob a run at a time, not one by one.
        position = run = start = end = 0
        if frozen is not None:
            position = run = bisect_left(frozen.indices, first)
        for index in self._between(first, first + CHUNK_TILES - 1):
            tile = tiles.get(index)
            if tile is None:
                assert frozen is not None  # held, and not decoded: frozen
                if position == run:
                    start = frozen.start(position)
                end = frozen.ends[position]
                position += 1
                continue
            if frozen is not None:
                if position > run:
                    fragments.append(frozen.blob[start:end])
                if position < len(frozen.indices) and frozen.indices[position] == index:
                    position += 1  # thawed: its frozen fragment is out of date
                run = position
            fragments.append(self._fragment(index, tile))
        if frozen is not None and position > run:
            fragments.append(frozen.blob[start:end])
        return encode_chunk(fragments)

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
        frozen = Frozen()
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
                    if index < first:
                        continue
                    if partial is None:
                        assert fragment is not None  # split_chunk slices what it leaves encoded
                        frozen.put(index, fragment)
                    else:
                        tiles[index] = Tile(partial, ids)
            state.frozen_below = hot_from
            if from_json:
                state.legacy_days = read
            elif read and read[0] == oldest:
                state.partly_out = oldest
        state.tiles = tiles
        state.order = array("q", sorted([*tiles, *frozen.indices]))
        if frozen.indices:
            state.frozen = frozen
        if from_json:
            state.changed = {i // CHUNK_TILES for i in tiles}
            if state.frozen_below is not None:
                # Decoded whole from JSON: the old ones are frozen with the first changes().
                state.thawed = [i for i in state.order if i < state.frozen_below]
        return state

    def apply(self, obs: Observation) -> tuple[Outcome, Row | None]:
        """Add one event; return what happened and, unless skipped, the row at the new R."""
        tile_index = obs.ts_us // TILE_US
        newest_us = self.newest_us
        if newest_us is not None and tile_index <= newest_us // TILE_US - RETAINED_TILES:
            return Outcome.TOO_LATE, None
        tile = self.tiles.get(tile_index)
        if tile is None:
            frozen = self.frozen
            position = -1 if frozen is None else frozen.find(tile_index)
            if position >= 0:
                assert frozen is not None
                tile = self._thaw(tile_index, frozen.fragment(position))
            else:
                tile = self.tiles[tile_index] = Tile()
                order = self.order
                if not order or tile_index > order[-1]:
                    order.append(tile_index)
                else:
                    insort(order, tile_index)
                    below = self.frozen_below
                    if below is not None and tile_index < below:
                        self._thawed(tile_index)  # a late event's new tile: frozen later
        if obs.id_hash in tile.ids:
            return Outcome.DUPLICATE, None
        row_us = self._next_row_time(obs.ts_us)
        row_tile = row_us // TILE_US
        # Move the windows to the new row tile before the event joins its tile: the tiles that
        # leave are subtracted as the windows hold them, and eviction comes after that.
        self._align(row_tile)
        deltas = obs.deltas
        add(tile.partial, deltas)
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
                tiles.pop(index, None)
                left.add(index // CHUNK_TILES)
            del order[:gone]
            if self.frozen is not None:
                self.frozen.drop_below(first)
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

    def _between(self, first: int, last: int) -> array[int]:
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
        entering = [self._partial(i) for i in self._between(aligned + 1, row_tile)]
        for partial, size in zip(self.windows, WINDOW_TILES, strict=True):
            for other in entering:
                merge(partial, other)
            for index in self._between(aligned - size + 1, row_tile - size):
                subtract(partial, self._partial(index))
        self.aligned_tile = row_tile

    def _realign(self, row_tile: int) -> None:
        # The windows are nested (24h in 7d in 30d) and end at the same tile, so one pass from
        # the newest tile back folds them all: each tile is merged once, not once per window.
        in_range = self._between(row_tile - WINDOW_TILES[-1] + 1, row_tile)
        running: Partial = {}
        windows: list[Partial] = []
        position = len(in_range) - 1
        for size in WINDOW_TILES:
            oldest = first_tile(size, row_tile)
            while position >= 0 and in_range[position] >= oldest:
                merge(running, self._partial(in_range[position]))
                position -= 1
            windows.append(dict(running))
        self.windows = windows
        self.aligned_tile = row_tile

    def _partial(self, index: int) -> Partial:
        """A held tile's partial, decoded for the moment where the tile is frozen."""
        tile = self.tiles.get(index)
        if tile is not None:
            return tile.partial
        frozen = self.frozen
        assert frozen is not None  # held, and not decoded: frozen
        return decode_tile(self.event_type, frozen.fragment(frozen.find(index)))[0]

    def _fragment(self, index: int, tile: Tile) -> bytes:
        encoded = tile.encoded
        if encoded is None:
            hour = index % CHUNK_TILES  # in the week
            encoded = tile.encoded = encode_tile(self.event_type, hour, tile.partial, tile.ids)
        return encoded

    def _thaw(self, index: int, fragment: bytes) -> Tile:
        """Decode a frozen tile a late event lands in; frozen again by the next changes()."""
        partial, ids = decode_tile(self.event_type, fragment)
        tile = self.tiles[index] = Tile(partial, ids, fragment)
        self._thawed(index)
        return tile

    def _thawed(self, index: int) -> None:
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
        indices = list(order[start : bisect_left(order, below)])
        if self.thawed is not None:
            indices = sorted({*indices, *self.thawed})
            self.thawed = None
        frozen = self.frozen
        for index in indices:
            tile = tiles.get(index)
            if tile is not None and index < below:
                if frozen is None:
                    frozen = self.frozen = Frozen()
                frozen.put(index, self._fragment(index, tile))
                del tiles[index]
        if self.frozen_below is None or below > self.frozen_below:
            self.frozen_below = below

    def _row(self, row_us: int) -> Row:
        assert self.aligned_tile is not None
        snapshot = Snapshot(
            windows=self.windows,
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
