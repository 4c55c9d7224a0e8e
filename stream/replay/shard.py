"""Which shard of a split backfill a user belongs to: one stable hash, in Python and in SQL.

Invariant: `shard_of(user_id, n)` and `SQL_SHARD` compute the same number for every user id, on
every machine and Python run (Python's own `hash()` is salted per process, so it is not used):
the unsigned integer of the first 8 hex digits of the MD5 of the id's UTF-8 bytes, modulo n.
An external launcher (Kubernetes Jobs, Airflow tasks) passes `--shard K/N` for K in 0..N-1 and
the N jobs cover every user exactly once. MD5 because Postgres has it built in, so the archive
query can read only a shard's users; it is a spread, not a security measure.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

from stream.errors import ConfigError

# The same number as shard_of's, in Postgres: `bit(32)::bigint` reads the 32 bits unsigned.
SQL_SHARD: Final = "(('x' || substr(md5(user_id), 1, 8))::bit(32)::bigint %% %s)"


def user_hash(user_id: str) -> int:
    """The 32-bit stable hash of a user id that shards are cut from."""
    return int(hashlib.md5(user_id.encode(), usedforsecurity=False).hexdigest()[:8], 16)


def shard_of(user_id: str, shards: int) -> int:
    """The shard (0..shards-1) that holds `user_id`."""
    return user_hash(user_id) % shards


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count`: the users whose `shard_of(user, count)` is `index`."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ConfigError(f"shard {self.index}/{self.count}: K/N needs N >= 1 and 0 <= K < N")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """`K/N`, as `--shard` takes it: shard K (from 0) of N."""
        index, sep, count = text.partition("/")
        if not sep or not index.strip().isdigit() or not count.strip().isdigit():
            raise ConfigError(f"shard {text!r} is not K/N (e.g. 0/4: the first of four shards)")
        return cls(int(index), int(count))

    def holds(self, user_id: str) -> bool:
        return shard_of(user_id, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def split(shards: int) -> list[Shard]:
    """Every shard of a split into `shards`, the whole when taken together."""
    return [Shard(k, shards) for k in range(shards)]
