"""When to give up waiting for the consumer and read again from the committed offsets.

A worker whose partitions hold unread events, that has consumed nothing for a while, and that
has nothing of its own in flight (no batch being written, no rebalance), is stalled: the events
were fetched and lost on the way to the ingest. Faust has more than one path that drops fetched
records and counts on a later rebalance to read them again (stream/worker/faust_adapter.py
closes the ones we know). The watchdog is the net under all of them: it seeks the partitions
back to their committed offsets, which is always safe because every effect of an event is
idempotent. Each time it acts without the worker making progress afterwards, it waits twice as
long before acting again, so a partition that only looks unread (its old records deleted by
retention) costs a log line now and then, not a loop.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Watchdog:
    """Pure bookkeeping: the worker reports progress and what it sees, and does what it is told."""

    stall_after_s: float
    max_wait_s: float = 600.0
    suspect_since: float | None = None  # since when events wait unread and nothing moves
    wait_s: float = 0.0  # how long to let that last before acting; doubles after each act
    acted: int = 0

    def progress(self, now: float) -> None:
        """Events reached the ingest: the consumer works."""
        self.suspect_since = now if self.suspect_since is not None else None
        self.wait_s = self.stall_after_s

    def should_act(self, now: float, unread: int, busy: bool) -> bool:
        """True once unread events have waited, with nothing in flight, for too long."""
        if unread <= 0 or busy:
            self.suspect_since = None
            return False
        if self.suspect_since is None:
            self.suspect_since = now
            return False
        wait = self.wait_s or self.stall_after_s
        if now - self.suspect_since < wait:
            return False
        self.suspect_since = now
        self.wait_s = min(self.max_wait_s, wait * 2)
        self.acted += 1
        return True
