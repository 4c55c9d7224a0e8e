"""id_hash: the 48-bit fold of an event id that the states keep to skip duplicates."""

from __future__ import annotations

import uuid
from hashlib import blake2b

import pytest

from stream.core.observe import ID_BITS, id_hash


def folded(event_id: str) -> int:
    """The definition, from the 128-bit integer (the stored states hold these values)."""
    try:
        whole = int(event_id.replace("-", ""), 16) if len(event_id) == 36 else -1
    except ValueError:
        whole = -1
    if whole < 0:
        return int.from_bytes(blake2b(event_id.encode(), digest_size=6).digest(), "little")
    return ((whole >> 96) ^ (whole >> 48) ^ whole) & ((1 << ID_BITS) - 1)


def test_a_uuid_folds_to_its_128_bit_integer_folded() -> None:
    for n in range(2_000):
        event_id = str(uuid.UUID(int=(n * 0x9E3779B97F4A7C15F39CC0605CEDC835) % (1 << 128)))
        assert id_hash(event_id) == folded(event_id) == folded(event_id.upper())
        assert id_hash(event_id.upper()) == id_hash(event_id)


@pytest.mark.parametrize(
    "event_id",
    [
        "00000000-0000-0000-0000-000000000000",
        "ffffffff-ffff-ffff-ffff-ffffffffffff",
        "0x000000-0000-0000-0000-000000000001",  # int() takes 0x at the start of the whole
        "00000000-0x00-0000-0000-000000000001",  # but not inside it: hashed with BLAKE2b
        "+0000000-0000-0000-0000-000000000001",
        " 0000000-0000-0000-0000-000000000001",
        "0000000_-0000-0000-0000-000000000001",
        "000000000000000000000000000000000001",  # 36 digits, no dashes
        "0000000000-00-0000-0000-000000000001",  # dashes elsewhere
        "g0000000-0000-0000-0000-000000000001",
        "évent-1",
        "",
    ],
)
def test_odd_ids_hash_as_the_definition_says(event_id: str) -> None:
    assert id_hash(event_id) == folded(event_id)
    assert 0 <= id_hash(event_id) < 1 << ID_BITS


def test_ids_that_differ_in_one_bit_never_share_a_hash() -> None:
    # The fold is linear over XOR: one flipped bit of the 128 flips one bit of the 48.
    base = uuid.uuid4().int
    hashes = {id_hash(str(uuid.UUID(int=base ^ (1 << bit)))) for bit in range(128)}
    assert id_hash(str(uuid.UUID(int=base))) not in hashes
