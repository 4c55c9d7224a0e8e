"""The binary form of a user state's records: what the changelog and the local store hold.

A head value holds a state's clocks, a chunk value one week of its tiles. Both start with the
format byte 0x02; the JSON forms of earlier versions start with `{` and are still read
(stream/core/state.py), so a changelog written before keeps working. Invariant: `decode_*`
of `encode_*` gives back exactly what was encoded (tests/unit/core/test_codec.py), so a
restored state computes the same bits as one that never stopped.

    head   0x02, varint(flags), then each clock the flags say is present, zigzag varints:
           newest_us, last_row_us, last_synced_us, partition; then zigzag(friend_delta)
    chunk  0x02, then per tile, ascending: varint(the tile's hour in the week, 0-167),
           varint(entries), the entries, then one 6-byte id per event the tile counted
    entry  a code byte, slot << 3 | how the value is written (`_put_entry`), a literal key
           for slot 0 (a key SLOTS does not know: a new enum value, say), then the value:
           measures are nano-units, so 45 minutes is 45 * 10**9, written as 45 and code 1

Slots are per event type and append-only: a record names slots by number, so a slot's key can
never change, and new keys go at the end of their tuple. The count of a measure every event of
its type carries (`nn:` of IMPLIED) is left out and read back as the tile's event count.
Ids are 48-bit hashes of the event ids (stream/core/observe.py `id_hash`).
"""

from __future__ import annotations

from typing import Final

from stream.core.observe import ID_BITS, ID_MASK
from stream.core.tiles import (
    EVENTS,
    Partial,
    category_key,
    nn_key,
    register_key,
    square_key,
    sum_key,
)

FORMAT: Final = 2
_FORMAT_BYTE: Final = b"\x02"
ID_BYTES: Final = ID_BITS // 8


def _measure(name: str, squared: bool = False) -> tuple[str, ...]:
    keys = (sum_key(name), nn_key(name))
    return (*keys, square_key(name)) if squared else keys


def _values(column: str, values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(category_key(column, v) for v in values)


# Append-only, per event type: slot i + 1 is SLOTS[type][i] (0 is the literal escape).
SLOTS: Final[dict[str, tuple[str, ...]]] = {
    "activity": (
        EVENTS,
        *_measure("duration_minutes"),
        *_measure("energy_level"),
        *_measure("mood"),
        *_values("activity_type", ("walking", "work", "reading", "meditation", "cooking",
                                   "chores", "socializing", "gaming", "music", "other")),
    ),
    "sleep": (
        EVENTS,
        *_measure("duration_minutes"),
        *_measure("deep_sleep_minutes"),
        *_measure("rem_sleep_minutes"),
        *_measure("bedtime_hours_from_noon", squared=True),
        *_measure("session_quality"),
    ),
    "exercise": (
        EVENTS,
        *_measure("duration_minutes"),
        *_measure("energy_after"),
        *_values("exercise_type", ("running", "cycling", "swimming", "strength", "yoga", "hiit",
                                   "walking", "other")),
        *_values("intensity", ("low", "moderate", "high")),
    ),
    "social": (
        EVENTS,
        *_measure("engagement_weight"),
        *_values("action", ("post", "comment", "like_given", "like_received", "friend_added",
                            "friend_removed")),
        category_key("target_user_id", "present"),
    ),
    "sync": (
        EVENTS,
        *_measure("success_weight"),
        *_measure("synced"),
        *_measure("metrics_present"),
        *_measure("heart_rate_avg"),
        *_measure("steps"),
        *_measure("active_calories"),
        *_values("provider", ("apple_health", "google_fit", "fitbit", "garmin", "oura", "strava",
                              "withings")),
    ),
}  # fmt: skip

# Measures every event of the type carries (stream/core/observe.py): their count is the tile's.
IMPLIED: Final[dict[str, frozenset[str]]] = {
    "activity": frozenset(nn_key(m) for m in ("duration_minutes", "energy_level", "mood")),
    "sleep": frozenset(
        nn_key(m)
        for m in (
            "duration_minutes",
            "deep_sleep_minutes",
            "rem_sleep_minutes",
            "bedtime_hours_from_noon",
            "session_quality",
        )
    ),
    "exercise": frozenset(nn_key(m) for m in ("duration_minutes", "energy_after")),
    "social": frozenset({nn_key("engagement_weight")}),
    "sync": frozenset(nn_key(m) for m in ("success_weight", "synced")),
}
_SLOT_OF: Final[dict[str, dict[str, int]]] = {
    t: {key: i + 1 for i, key in enumerate(keys)} for t, keys in SLOTS.items()
}

# Head flags: which clocks follow.
_NEWEST, _ROW, _SYNCED, _PARTITION = 1, 2, 4, 8


def is_binary(value: bytes) -> bool:
    return value[:1] == _FORMAT_BYTE


# --- varints ----------------------------------------------------------------------------------


def _put(out: bytearray, n: int) -> None:
    """Append the base-128 varint of a non-negative integer (of any size)."""
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _zigzag(n: int) -> int:
    return n << 1 if n >= 0 else ((-n) << 1) - 1


def _unzigzag(n: int) -> int:
    return n >> 1 if not n & 1 else -((n + 1) >> 1)


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos

    def varint(self) -> int:
        data = self.data
        pos = self.pos
        byte = data[pos]
        pos += 1
        if byte < 0x80:
            self.pos = pos
            return byte
        n = byte & 0x7F
        shift = 7
        while True:
            byte = data[pos]
            pos += 1
            n |= (byte & 0x7F) << shift
            if byte < 0x80:
                self.pos = pos
                return n
            shift += 7

    def take(self, size: int) -> bytes:
        start = self.pos
        self.pos = start + size
        return self.data[start : self.pos]

    def done(self) -> bool:
        return self.pos >= len(self.data)


# An entry's code byte: its slot in the high five bits, how its value is written in the low
# three. Codes 0-6: the value is m * 10**e with m >= 0 written as a varint and e the code's;
# nano-units make e = 9 (whole units), 8 and 7 (tenths, hundredths), 6 (scores) and 0 (counts)
# the usual ones. Code 7: zigzag(m) and then e, for anything else (a square, a negative).
_EXPONENTS: Final = (0, 9, 8, 7, 6, 3, 12)
_CODE_OF: Final = {e: code for code, e in enumerate(_EXPONENTS)}
_EXPLICIT: Final = 7
_LITERAL: Final = 0  # slot 0: the key follows the code byte, literally
_MAX_SLOT: Final = 31


def _put_entry(out: bytearray, slot: int, key: str, value: int) -> None:
    m, e = value, 0
    if m:
        # Durations are nano-units: up to 13 trailing zeros, taken eight and then one at a time.
        while m % 100_000_000 == 0:
            m //= 100_000_000
            e += 8
        while m % 10 == 0:
            m //= 10
            e += 1
    code = _CODE_OF.get(e, _EXPLICIT) if m >= 0 else _EXPLICIT
    if slot > _MAX_SLOT:
        slot = _LITERAL
    out.append((slot << 3) | code)
    if slot == _LITERAL:
        text = key.encode()
        _put(out, len(text))
        out += text
    if code == _EXPLICIT:
        _put(out, _zigzag(m))
        _put(out, e)
    else:
        _put(out, m)


def _read_entry(reader: _Reader, keys: tuple[str, ...]) -> tuple[str, int]:
    byte = reader.data[reader.pos]
    reader.pos += 1
    slot, code = byte >> 3, byte & 7
    key = keys[slot - 1] if slot else register_key(reader.take(reader.varint()).decode())
    if code == _EXPLICIT:
        m = _unzigzag(reader.varint())
        return key, m * 10 ** reader.varint()
    return key, reader.varint() * 10 ** _EXPONENTS[code]


# --- heads ------------------------------------------------------------------------------------


def encode_head(
    newest_us: int | None,
    last_row_us: int | None,
    last_synced_us: int | None,
    partition: int | None,
    friend_delta: int,
) -> bytes:
    # Written out, not looped over a tuple of pairs: a head is encoded with every change.
    flags = 0
    out = bytearray(_FORMAT_BYTE)
    body = bytearray()
    if newest_us is not None:
        flags |= _NEWEST
        _put(body, _zigzag(newest_us))
    if last_row_us is not None:
        flags |= _ROW
        _put(body, _zigzag(last_row_us))
    if last_synced_us is not None:
        flags |= _SYNCED
        _put(body, _zigzag(last_synced_us))
    if partition is not None:
        flags |= _PARTITION
        _put(body, _zigzag(partition))
    _put(body, _zigzag(friend_delta))
    _put(out, flags)
    out += body
    return bytes(out)


Head = tuple[int | None, int | None, int | None, int | None, int]


def decode_head(value: bytes) -> Head:
    """(newest_us, last_row_us, last_synced_us, partition, friend_delta)."""
    reader = _Reader(value, 1)
    flags = reader.varint()
    clocks: list[int | None] = []
    for flag in (_NEWEST, _ROW, _SYNCED, _PARTITION):
        clocks.append(_unzigzag(reader.varint()) if flags & flag else None)
    friend_delta = _unzigzag(reader.varint())
    return clocks[0], clocks[1], clocks[2], clocks[3], friend_delta


# --- tiles and chunks -------------------------------------------------------------------------


def encode_tile(event_type: str, hour: int, partial: Partial, ids: tuple[int, ...]) -> bytes:
    """One tile's part of a chunk: its hour in the week, its partial's entries, its ids.

    A tile holds one id per event it counted, so the ids' number is its event count, which
    the entries carry: no count of their own.
    """
    out = bytearray()
    _put(out, hour)
    slots = _SLOT_OF[event_type]
    implied = IMPLIED[event_type]
    events = partial.get(EVENTS, 0)
    entries = bytearray()
    count = 0
    for key, value in partial.items():
        if key in implied and value == events:
            continue
        _put_entry(entries, slots.get(key, _LITERAL), key, value)
        count += 1
    for key in implied:
        # An implied count the tile does not hold (never made by observe, but exact anyway):
        # written as an explicit 0, which decoding drops again.
        if events and key not in partial:
            _put_entry(entries, slots[key], key, 0)
            count += 1
    _put(out, count)
    out += entries
    if len(ids) != events:
        raise ValueError(f"a tile of {events} events holds {len(ids)} ids")
    for one in ids:
        out += (one & ID_MASK).to_bytes(ID_BYTES, "little")
    return bytes(out)


def encode_chunk(fragments: list[bytes]) -> bytes:
    """A chunk value from its tiles' fragments (`encode_tile`), ascending by hour."""
    return _FORMAT_BYTE + b"".join(fragments)


# A chunk's tiles as restore keeps them: (tile index, partial, ids, fragment); an old tile is
# kept as its fragment alone (partial None), decoded again only where it is needed.
Split = list[tuple[int, Partial | None, tuple[int, ...], bytes | None]]


def _read_tile(
    reader: _Reader, event_type: str, build_from: int = 0
) -> tuple[int, Partial | None, tuple[int, ...]]:
    """(hour, partial, ids) of the tile at the reader; for an hour before `build_from`,
    (hour, None, ()) and the reader past it (the entries are parsed only for the tile's event
    count)."""
    keys = SLOTS[event_type]
    hour = reader.varint()
    build = hour >= build_from
    partial: Partial = {}
    events = 0
    for _ in range(reader.varint()):
        key, amount = _read_entry(reader, keys)
        if build:
            partial[key] = amount
        elif key == EVENTS:
            events = amount
    if not build:
        reader.pos += events * ID_BYTES
        return hour, None, ()
    events = partial.get(EVENTS, 0)
    ids = tuple(int.from_bytes(reader.take(ID_BYTES), "little") for _ in range(events))
    if events:
        for key in IMPLIED[event_type]:
            if key not in partial:
                partial[key] = events
    for key in [k for k, v in partial.items() if not v]:
        del partial[key]
    return hour, partial, ids


def decode_tile(event_type: str, fragment: bytes) -> tuple[Partial, tuple[int, ...]]:
    """The partial and the ids of one tile's fragment (`encode_tile`)."""
    _, partial, ids = _read_tile(_Reader(fragment, 0), event_type)
    assert partial is not None
    return partial, ids


def split_chunk(event_type: str, first_tile: int, value: bytes, decode_from: int) -> Split:
    """A chunk value's tiles, ascending: those from tile `decode_from` on decoded, the older
    ones as their fragments, sliced from the value."""
    reader = _Reader(value, 1)
    tiles: Split = []
    while not reader.done():
        start = reader.pos
        hour, partial, ids = _read_tile(reader, event_type, decode_from - first_tile)
        fragment = None if partial is not None else value[start : reader.pos]
        tiles.append((first_tile + hour, partial, ids, fragment))
    return tiles
