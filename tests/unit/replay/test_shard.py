"""The shard hash: stable across runs and machines, spread evenly, parsed strictly."""

from __future__ import annotations

from collections import Counter

import pytest

from stream.errors import ConfigError
from stream.replay.shard import Shard, shard_of, split, user_hash


@pytest.mark.parametrize(
    ("user_id", "expected"),
    [
        # Pinned: an external launcher, or another language, must compute these same numbers.
        ("a", 214_005_177),
        ("user-1", 3_604_443_219),
        ("zzé中", 2_101_401_863),
        ("", 3_558_706_393),
    ],
)
def test_the_hash_is_the_md5_prefix_and_never_changes(user_id: str, expected: int) -> None:
    assert user_hash(user_id) == expected


def test_users_spread_evenly_over_the_shards() -> None:
    users = [f"u{i:07d}" for i in range(30_000)]
    for n in (2, 3, 8):
        counts = Counter(shard_of(u, n) for u in users)
        assert set(counts) == set(range(n))
        assert max(counts.values()) / min(counts.values()) < 1.1


def test_the_shards_of_a_split_hold_every_user_exactly_once() -> None:
    users = [f"user-{i}" for i in range(1_000)]
    for n in (1, 2, 3, 5):
        holders = [[s for s in split(n) if s.holds(u)] for u in users]
        assert all(len(h) == 1 for h in holders)


@pytest.mark.parametrize(
    ("text", "shard"), [("0/1", Shard(0, 1)), ("2/3", Shard(2, 3)), (" 7 / 8 ", Shard(7, 8))]
)
def test_parse(text: str, shard: Shard) -> None:
    assert Shard.parse(text) == shard
    assert str(shard) == f"{shard.index}/{shard.count}"


@pytest.mark.parametrize("text", ["3/3", "1/0", "-1/2", "1", "a/b", "1/2/3", ""])
def test_parse_refuses_what_is_no_shard(text: str) -> None:
    with pytest.raises(ConfigError):
        Shard.parse(text)
