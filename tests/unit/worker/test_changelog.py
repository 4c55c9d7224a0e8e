"""How a flush's changelog records are cut into record batches: never through a state."""

from __future__ import annotations

import random

from stream.core.records import Record
from stream.worker.changelog import BATCH_HEADER, RECORD_OVERHEAD, plan


def _size(records: list[Record]) -> int:
    return BATCH_HEADER + sum(len(k) + len(v or b"") + RECORD_OVERHEAD for k, v in records)


def _groups(seed: int, count: int, biggest: int) -> list[list[Record]]:
    rng = random.Random(seed)
    groups = []
    for g in range(count):
        records: list[Record] = [(f"activity|u{g}".encode(), b"h" * rng.randint(50, 150))]
        for c in range(rng.randint(0, 4)):
            value = None if rng.random() < 0.1 else b"c" * rng.randint(10, biggest)
            records.append((f"activity@{c}|u{g}".encode(), value))
        groups.append(records)
    return groups


def test_batches_keep_order_and_limit_and_never_cut_a_state() -> None:
    groups = _groups(seed=1, count=3_000, biggest=4_000)
    batches = plan(groups, 100_000)
    assert len(batches) > 10
    assert [r for b in batches for r in b] == [r for g in groups for r in g]
    assert all(_size(b) <= 100_000 for b in batches)
    owner = {key: g for g, group in enumerate(groups) for key, _ in group}
    seen: set[int] = set()
    for batch in batches:
        states = {owner[key] for key, _ in batch}
        assert not states & seen, "a state's records were split over two batches"
        seen |= states


def test_a_state_larger_than_a_batch_is_cut_only_where_it_must_be() -> None:
    big: list[Record] = [(b"sleep|big", b"h")]
    big += [(f"sleep@{c}|big".encode(), b"x" * 3_000) for c in range(10)]
    small: list[Record] = [(b"sleep|small", b"h" * 100)]
    batches = plan([small, big, small], 10_000)
    assert [r for b in batches for r in b] == small + big + small
    assert all(_size(b) <= 10_000 for b in batches)
    assert batches[0] == small  # the big state starts a batch of its own


def test_nothing_to_send_is_no_batch() -> None:
    assert plan([], 1_000) == []
