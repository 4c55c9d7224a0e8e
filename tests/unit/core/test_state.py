"""The tile state machine against the independent pandas reference, row for row."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from stream.catalog import features_of
from stream.core.codec import decode_tile
from stream.core.events import to_us
from stream.core.observe import observe
from stream.core.records import Record, Row
from stream.core.state import (
    CHUNK_TILES,
    HOT_TILES,
    Outcome,
    UserState,
    chunk_key,
    head_key,
    legacy_day_key,
)
from stream.core.tiles import TILE_US, Partial, first_tile, tile_of
from stream.synth.generator import GeneratorConfig, generate
from tests.reference import RefRow, rows_in_arrival_order

START = datetime(2026, 10, 1, tzinfo=UTC)


def valid_events(**overrides: Any) -> list[dict[str, Any]]:
    config = GeneratorConfig(
        **{
            "users": 6,
            "days": 12,
            "seed": 7,
            "start": START,
            "out_of_order": 0.05,
            "duplicates": 0.03,
            **overrides,
        }
    )
    return [g.event for g in generate(config) if g.valid and g.event is not None]


def pipeline_rows(events: list[dict[str, Any]]) -> Iterator[Row]:
    states: dict[tuple[str, str], UserState] = {}
    for event in events:
        key = (event["user_id"], event["event_type"])
        state = states.setdefault(key, UserState(event["user_id"], event["event_type"]))
        outcome, row = state.apply(observe(event))
        if outcome is Outcome.APPLIED:
            assert row is not None
            yield row


def assert_same(got: Row, want: RefRow) -> None:
    assert (got.view, got.user_id, got.row_us) == (want.view, want.user_id, want.row_us)
    for spec in features_of(got.view):
        a, b = got.values[spec.name], want.values[spec.name]
        if isinstance(a, float) or isinstance(b, float):
            assert a is not None and b is not None, f"{spec.name}: {a!r} vs {b!r}"
            assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9), f"{spec.name}: {a} vs {b}"
        else:
            assert a == b, f"{spec.name} at {got.row_us}: {a!r} vs {b!r}"


@pytest.mark.parametrize(
    ("seed", "users", "days"),
    # 12 days moves events out of the 24h and 7d windows; 40 days out of the 30d window and the
    # state, and past many full folds between the windows' incremental slides.
    [(1, 6, 12), (7, 6, 12), (3, 2, 40)],
)
def test_every_row_equals_the_reference(seed: int, users: int, days: int) -> None:
    events = valid_events(seed=seed, users=users, days=days)
    got = list(pipeline_rows(events))
    want = rows_in_arrival_order(events)
    assert len(got) == len(want) > 500
    for g, w in zip(got, want, strict=True):
        assert_same(g, w)


def _event(event_id: str, at: datetime, **payload: Any) -> dict[str, Any]:
    base = {"activity_type": "walking", "duration_minutes": 30, "energy_level": 6, "mood": 7}
    return {
        "event_id": event_id,
        "user_id": "u1",
        "event_type": "activity",
        "event_timestamp": at.isoformat(),
        "schema_version": 1,
        "source_app": "test",
        "payload": {**base, **payload},
    }


def test_window_boundary_is_the_tile_start_24h_back() -> None:
    state = UserState("u1", "activity")
    t = datetime(2026, 11, 2, 14, 25, tzinfo=UTC)
    state.apply(observe(_event("a", t - timedelta(hours=23, minutes=26))))  # 14:59 the day before
    _, row = state.apply(observe(_event("b", t - timedelta(hours=23, minutes=24))))  # 15:01
    assert row is not None and row.values["activity_count_24h"] == 2
    _, row = state.apply(observe(_event("c", t)))
    # At 14:25 the 24h window starts at 15:00 yesterday: the 14:59 event has left it.
    assert row is not None and row.values["activity_count_24h"] == 2
    assert row.values["activity_count_7d"] == 3


def test_duplicates_and_too_late_events_are_not_applied() -> None:
    state = UserState("u1", "activity")
    now = datetime(2026, 11, 2, 12, tzinfo=UTC)
    assert state.apply(observe(_event("a", now)))[0] is Outcome.APPLIED
    assert state.apply(observe(_event("a", now)))[0] is Outcome.DUPLICATE
    old = now - timedelta(days=31)
    assert state.apply(observe(_event("z", old)))[0] is Outcome.TOO_LATE
    outcome, row = state.apply(observe(_event("late", now - timedelta(days=2))))
    assert outcome is Outcome.APPLIED and row is not None
    assert row.values["activity_count_7d"] == 2 and row.values["activity_count_24h"] == 1
    # The late event's row is newer than the last one, so no store drops it as stale.
    assert row.row_us == to_us(now) + 1


def test_state_is_bounded_to_the_longest_window() -> None:
    state = UserState("u1", "activity")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for day in range(90):
        state.apply(observe(_event(f"e{day}", start + timedelta(days=day))))
    assert state.newest_us is not None
    assert len(state.order) <= 30
    assert state.order[0] >= tile_of(state.newest_us) - 30 * 24 + 1
    state.changes()  # freezes the tiles more than HOT_TILES hours behind the newest
    assert len(state.tiles) == 1  # the newest event's: yesterday's is frozen
    assert HOT_TILES < 24
    assert state.frozen is not None and list(state.frozen.indices) == list(state.order)[:-1]


def test_idle_decay_to_zero_one_day_later() -> None:
    state = UserState("u1", "activity")
    t = datetime(2026, 11, 2, 8, 10, tzinfo=UTC)
    state.apply(observe(_event("a", t)))
    later = to_us(t) + 24 * TILE_US
    assert state.changes_by(later)
    row = state.row_at(later)
    assert row is not None and row.values["activity_count_24h"] == 0
    assert row.values["activity_count_7d"] == 1
    assert row.values["most_common_activity_24h"] is None


def _compact(store: dict[bytes, bytes], records: list[Record]) -> int:
    """What a compacted changelog keeps: the last value of a key; a tombstone removes it.
    Returns the tombstones of keys it did not hold (records sent for nothing)."""
    idle = 0
    for key, value in records:
        if value is None:
            idle += store.pop(key, None) is None
        else:
            store[key] = value
    return idle


def _contents(state: UserState) -> dict[int, tuple[Partial, tuple[int, ...]]]:
    """Each tile's partial and ids, a frozen tile's decoded from its fragment."""
    found = {index: (tile.partial, tile.ids) for index, tile in state.tiles.items()}
    frozen = state.frozen
    if frozen is not None:
        for position, index in enumerate(frozen.indices):
            if index not in found:  # a thawed tile's frozen fragment is out of date
                found[index] = decode_tile(state.event_type, frozen.fragment(position))
    return found


def _same_state(a: UserState, b: UserState) -> None:
    assert list(a.order) == list(b.order) == sorted(_contents(a))
    assert _contents(a) == _contents(b)
    clocks = ("newest_us", "last_row_us", "friend_delta", "last_synced_us", "partition")
    assert [getattr(a, c) for c in clocks] == [getattr(b, c) for c in clocks]


@pytest.mark.parametrize("flush_every", [1, 97])
def test_state_survives_restarts_from_its_changelog_records(flush_every: int) -> None:
    # 40 days: whole days leave the 30-day window, and their chunks must leave the changelog.
    events = valid_events(users=3, days=40, seed=3)
    # Right after a flush, as the worker restores them (later events are read again).
    restarts = {n - n % flush_every for n in (len(events) // 3, len(events) // 2, len(events) - 9)}
    store: dict[bytes, bytes] = {}
    states: dict[tuple[str, str], UserState] = {}
    rows: list[Row] = []
    idle_tombstones = 0
    for i, event in enumerate(events):
        if i % flush_every == 0:
            for state in states.values():
                idle_tombstones += _compact(store, state.changes())
        if i in restarts:  # as after a restart: only the changelog survives
            restored = {
                k: UserState.restore(k[0], k[1], store[head_key(*k)], store.get)  # type: ignore[arg-type]
                for k in states
            }
            for k, state in states.items():
                _same_state(restored[k], state)
            states = restored
        key = (event["user_id"], event["event_type"])
        state = states.setdefault(key, UserState(*key))
        _, row = state.apply(observe(event))
        if row is not None:
            rows.append(row)
    assert rows == list(pipeline_rows(events))
    for state in states.values():
        idle_tombstones += _compact(store, state.changes())
    # Only days that had a record get a tombstone, not every day before a state's first event.
    assert idle_tombstones == 0
    # No record of a day wholly outside its state's window is left behind.
    wanted = {k for s in states.values() for k in s.records()}
    for state in states.values():
        assert state.newest_us is not None
        oldest = first_tile(30 * 24, tile_of(state.newest_us)) // CHUNK_TILES
        wanted.add(chunk_key(state.user_id, state.event_type, oldest))  # partly in the window
    assert wanted >= set(store)


def test_an_event_rewrites_the_head_and_its_day_only() -> None:
    events = valid_events(users=1, days=31, seed=11, out_of_order=0.0, duplicates=0.0)
    state = UserState(events[0]["user_id"], "activity")
    for event in events:
        if event["event_type"] == "activity":
            state.apply(observe(event))
    state.changes()
    # The newest activity event again under a new id: its tile, in the newest day, changes.
    event = next(e for e in reversed(events) if e["event_type"] == "activity")
    outcome, _ = state.apply(observe(dict(event, event_id="one-more")))
    assert outcome is Outcome.APPLIED
    changes = dict(state.changes())
    day = tile_of(observe(event).ts_us) // CHUNK_TILES
    user = state.user_id
    assert set(changes) == {head_key(user, "activity"), chunk_key(user, "activity", day)}
    whole = sum(len(v) for v in state.records().values())
    assert sum(len(v or b"") for v in changes.values()) * 3 < whole
    assert state.changes() == [(head_key(state.user_id, "activity"), state.head())]


def _json_partial(partial: Partial) -> dict[str, int | str]:
    """As the JSON forms wrote a partial: integers past 64 bits as strings."""
    return {k: (v if -(2**63) <= v < 2**63 else str(v)) for k, v in partial.items()}


def _json_forms(state: UserState, events: list[dict[str, Any]]) -> tuple[bytes, dict[bytes, bytes]]:
    """The state's records as the JSON forms before the binary one wrote them: the first (the
    whole state in its head) and the second (a JSON head and a JSON object per day)."""
    ids: dict[int, list[str]] = {}
    for event in events:
        ids.setdefault(tile_of(observe(event).ts_us), []).append(event["event_id"])
    head = {
        "u": state.user_id,
        "t": state.event_type,
        "n": state.newest_us,
        "r": state.last_row_us,
        "f": state.friend_delta,
        "s": state.last_synced_us,
        "p": state.partition,
    }
    tiles = {i: [_json_partial(p), sorted(ids[i])] for i, (p, _) in _contents(state).items()}
    first = orjson.dumps({**head, "tiles": {str(i): v for i, v in tiles.items()}})
    second = {head_key(state.user_id, state.event_type): orjson.dumps(head)}
    for i, value in tiles.items():
        key = legacy_day_key(state.user_id, state.event_type, i // 24)
        day = orjson.loads(second.get(key, b"{}"))
        second[key] = orjson.dumps({**day, str(i): value})
    return first, second


def test_the_json_forms_of_earlier_versions_are_read_and_rewritten_in_binary() -> None:
    events = valid_events(users=1, days=5, seed=2, duplicates=0.0)
    kind = events[0]["event_type"]
    mine = [e for e in events if e["event_type"] == kind]
    state = UserState(events[0]["user_id"], kind)
    for event in mine:
        state.apply(observe(event))
    first, second = _json_forms(state, mine)
    nothing: dict[bytes, bytes] = {}
    head = head_key(state.user_id, kind)
    for read in (
        UserState.restore(state.user_id, kind, first, nothing.get),
        UserState.restore(state.user_id, kind, second[head], second.get),
    ):
        _same_state(read, state)
        store: dict[bytes, bytes] = {}
        _compact(store, read.changes())
        assert all(v[:1] == b"\x02" for v in store.values()), "rewritten in the binary form"
        _same_state(UserState.restore(state.user_id, kind, store[head], store.get), state)


def test_a_head_is_a_few_bytes() -> None:
    """Every change rewrites its state's head, and the store keeps one per state."""
    events = valid_events(users=1, days=3, seed=4)
    state = UserState(events[0]["user_id"], "sync")
    for event in events:
        if event["event_type"] == "sync":
            state.apply(observe(event))
    state.partition = 3
    assert state.last_synced_us is not None
    assert len(state.head()) <= 32


def test_late_events_thaw_frozen_tiles_and_freeze_them_again() -> None:
    state = UserState("u1", "activity")
    start = datetime(2026, 11, 2, tzinfo=UTC)
    for hour in range(0, 96, 3):  # a tile every third hour for four days
        state.apply(observe(_event(f"e{hour}", start + timedelta(hours=hour, minutes=5))))
    store: dict[bytes, bytes] = {}
    _compact(store, state.changes())
    assert state.frozen is not None and len(state.frozen.indices) > 20
    # Into a frozen tile (thawed), a duplicate of a frozen tile's event, and a new tile
    # between frozen ones: each counted once, and frozen again by the next changes().
    outcome, row = state.apply(observe(_event("late", start + timedelta(hours=30, minutes=9))))
    assert outcome is Outcome.APPLIED and row is not None
    assert row.values["activity_count_7d"] == 33
    assert state.apply(observe(_event("e33", start + timedelta(hours=33, minutes=5))))[0] is (
        Outcome.DUPLICATE
    )
    outcome, row = state.apply(observe(_event("gap", start + timedelta(hours=40, minutes=1))))
    assert outcome is Outcome.APPLIED and row is not None
    assert row.values["activity_count_7d"] == 34
    assert set(state.tiles) >= {tile_of(to_us(start)) + 30, tile_of(to_us(start)) + 40}
    _compact(store, state.changes())
    assert min(state.tiles) > tile_of(state.newest_us or 0) - HOT_TILES  # the late ones frozen
    restored = UserState.restore("u1", "activity", store[head_key("u1", "activity")], store.get)
    _same_state(restored, state)
    assert _contents(state)[tile_of(to_us(start)) + 30][0]["n"] == 2
