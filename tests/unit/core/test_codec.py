"""The binary state records: what is encoded is decoded exactly, and small."""

from __future__ import annotations

import pytest

from stream.core.codec import (
    SLOTS,
    decode_head,
    decode_tile,
    encode_chunk,
    encode_head,
    encode_tile,
    is_binary,
    split_chunk,
)
from stream.core.tiles import EVENTS, Partial, category_key, nn_key, square_key, sum_key


@pytest.mark.parametrize(
    "clocks",
    [
        (None, None, None, None, 0),
        (1_764_000_000_123_456, 1_764_000_000_123_457, None, 3, 0),
        (1_764_000_000_000_000, 1_764_000_000_000_001, 1_763_999_999_000_000, 0, -4),
        (-5, -4, -3, 0, 12),  # before 1970 is still exact
    ],
)
def test_a_head_round_trips(
    clocks: tuple[int | None, int | None, int | None, int | None, int],
) -> None:
    newest, row, synced, partition, friends = clocks
    value = encode_head(newest, row, synced, partition, friends)
    assert is_binary(value) and len(value) <= 40
    assert decode_head(value) == clocks


@pytest.mark.parametrize(
    ("event_type", "partial"),
    [
        ("activity", {EVENTS: 1, sum_key("duration_minutes"): 30_000_000_000,
                      nn_key("duration_minutes"): 1, sum_key("energy_level"): 6_000_000_000,
                      nn_key("energy_level"): 1, sum_key("mood"): 7_000_000_000,
                      nn_key("mood"): 1, category_key("activity_type", "walking"): 1}),
        ("sleep", {EVENTS: 2, sum_key("bedtime_hours_from_noon"): 23_333_333_333,
                   nn_key("bedtime_hours_from_noon"): 2,
                   square_key("bedtime_hours_from_noon"): 272_222_222_214_444_444_445}),
        # An implied count that is not the tile's event count is written out.
        ("activity", {EVENTS: 2, nn_key("mood"): 1, sum_key("mood"): 5_000_000_000}),
        # A key the slots do not know (a new enum value) is written literally.
        ("activity", {EVENTS: 1, category_key("activity_type", "paragliding"): 1}),
        ("social", {EVENTS: 3, sum_key("engagement_weight"): -1, nn_key("engagement_weight"): 3}),
        ("activity", {EVENTS: 1, sum_key("duration_minutes"): 12_345_678_901_234_567}),
        ("sync", {EVENTS: 1, nn_key("success_weight"): 1, nn_key("synced"): 1}),
    ],
)  # fmt: skip
def test_a_chunk_round_trips(event_type: str, partial: Partial) -> None:
    # One id per event the tile counted, 48 bits each.
    ids = (0, 2**48 - 1, 1_234_567_890_123)[: partial[EVENTS]]
    tiles = [(7, partial, ids), (150, partial, ids)]  # hours of the week
    value = encode_chunk([encode_tile(event_type, hour, p, i) for hour, p, i in tiles])
    assert is_binary(value)
    week = 2_900 * 168
    decoded = split_chunk(event_type, week, value, week)
    assert decoded == [(week + hour, p, i, None) for hour, p, i in tiles]
    # Tiles before `decode_from` come back as their fragments, which decode to the same.
    older, newer = split_chunk(event_type, week, value, week + 8)
    assert older[:3] == (week + 7, None, ()) and older[3] is not None
    assert decode_tile(event_type, older[3]) == (partial, ids)
    assert newer == (week + 150, partial, ids, None)


def test_one_activity_event_takes_about_twenty_bytes() -> None:
    partial = {
        EVENTS: 1,
        sum_key("duration_minutes"): 45_000_000_000,
        nn_key("duration_minutes"): 1,
        sum_key("energy_level"): 6_000_000_000,
        nn_key("energy_level"): 1,
        sum_key("mood"): 8_000_000_000,
        nn_key("mood"): 1,
        category_key("activity_type", "reading"): 1,
    }
    tile = encode_tile("activity", 13, partial, (2**47 + 5,))
    # hour 1, entry count 1, five entries of a code byte and a one-byte value, a 6-byte id
    assert len(tile) == 18, len(tile)


def test_a_tile_whose_ids_are_not_its_events_is_refused() -> None:
    with pytest.raises(ValueError, match="2 events holds 1 ids"):
        encode_tile("activity", 0, {EVENTS: 2}, (1,))


def test_slots_hold_each_key_once() -> None:
    for event_type, keys in SLOTS.items():
        assert len(set(keys)) == len(keys), event_type
        assert keys[0] == EVENTS
