"""The sink contract, the write every sink takes, and the retry around each write.

A sink is set up once (connections, the registry's views), then writes `Flush`es, then is
closed. Every write is idempotent (offline rows merge on their key, Redis keeps the newer row,
the archive skips an event_id it holds), so a failed write is simply made again: `with_retry`
repeats it while the failure is one a retry can cure.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import psycopg
import redis

from stream.core.records import ArchiveRow, Row
from stream.errors import SinkRetryExhaustedError

logger = logging.getLogger(__name__)

T = TypeVar("T")

# What a retry can cure: a server restarting, a network blip, a timeout. On a Redis Cluster
# also a master away (CLUSTERDOWN from the others once they mark it failed, or no node known
# for a slot) and a slot migrating (TRYAGAIN).
TRANSIENT: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.SlotNotCoveredError,
    redis.exceptions.TryAgainError,
    ConnectionError,
    TimeoutError,
)


def transient(exc: BaseException) -> bool:
    """Whether a retry can cure `exc`: a TRANSIENT error, or redis-py's cluster client failing
    to reach any node (it raises its generic RedisClusterException from the ConnectionError)."""
    if isinstance(exc, TRANSIENT):
        return True
    cause = exc.__cause__
    return isinstance(exc, redis.exceptions.RedisClusterException) and isinstance(cause, TRANSIENT)


@dataclass(frozen=True, slots=True)
class Replace:
    """Rows to delete before a flush's rows are written: per view, these users' rows whose
    time is in [start_us, end_us) (replay replaces a range, so a rerun adds nothing)."""

    start_us: int
    end_us: int
    users: dict[str, list[str]]


@dataclass(slots=True)
class Flush:
    """One write: feature rows (in row-time order per user), archive rows, what to do with them."""

    rows: list[Row] = field(default_factory=list)
    archive: list[ArchiveRow] = field(default_factory=list)
    online: bool = True  # the newest row per user and view, to the online store
    offline: bool = True  # every row, to the offline store
    replace: Replace | None = None


class Sink(Protocol):
    """Where a flush goes. `write` raises a TRANSIENT error for `with_retry` to repeat it."""

    name: str

    def setup(self) -> None:
        """Open connections and look up what writing needs, before the first write."""

    def write(self, flush: Flush) -> None:
        """Write this sink's part of the flush, idempotently."""

    def close(self) -> None:
        """Release the connections."""


def with_retry(
    write: Callable[[], T],
    what: str,
    *,
    first_delay_s: float = 0.2,
    max_delay_s: float = 10.0,
    give_up_after_s: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[], None] | None = None,
) -> T:
    """Run `write`, backing off exponentially while it fails with a transient error."""
    delay = first_delay_s
    started = time.monotonic()
    attempt = 1
    while True:
        try:
            return write()
        except Exception as exc:
            if not transient(exc):
                raise
            waited = time.monotonic() - started
            if give_up_after_s is not None and waited > give_up_after_s:
                raise SinkRetryExhaustedError(f"{what} failed for {waited:.0f}s") from exc
            logger.warning(
                "%s failed (attempt %d), retrying in %.1fs: %s", what, attempt, delay, exc
            )
            if on_retry is not None:
                on_retry()
            sleep(delay)
            delay = min(max_delay_s, delay * 2)
            attempt += 1


def by_view(rows: Iterable[Row]) -> dict[str, list[Row]]:
    """Rows grouped by feature view, each group in the given order."""
    grouped: dict[str, list[Row]] = {}
    for row in rows:
        grouped.setdefault(row.view, []).append(row)
    return grouped


def latest_per_user(rows: Iterable[Row]) -> list[Row]:
    """Coalesce: the newest row of each (view, user), which is all the online store needs."""
    newest: dict[tuple[str, str], Row] = {}
    for row in rows:
        key = (row.view, row.user_id)
        current = newest.get(key)
        if current is None or row.row_us > current.row_us:
            newest[key] = row
    return list(newest.values())
