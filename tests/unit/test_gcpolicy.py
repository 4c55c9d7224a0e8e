"""The collector policy: what a process held at set-up is frozen, and cycles made later are still
collected. Run in a child process, so this test's own interpreter keeps CPython's defaults."""

from __future__ import annotations

import subprocess
import sys

# What both children start with: a heap to freeze, and a way to make a cycle of garbage.
PRELUDE = """
import gc, threading, time, weakref
from stream import gcpolicy

class Node:
    pass

def cycle():
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)

held = [Node() for _ in range(1000)]
"""


def _run_child(code: str) -> subprocess.CompletedProcess[str]:
    """`code`, run after PRELUDE in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-c", PRELUDE + code],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


CHILD = """
gcpolicy.settle()
print(gc.get_threshold() == gcpolicy.THRESHOLDS, gc.get_freeze_count() >= 1000)

# A cycle made after set-up is freed by the collector's own passes, with no explicit collect:
# a young collection comes after THRESHOLDS[0] more tracked objects are alive.
gone = cycle()
more = [Node() for _ in range(gcpolicy.THRESHOLDS[0] + 1)]
print(gone() is None)
"""


def test_settle_freezes_the_set_up_heap_and_cycles_are_still_collected() -> None:
    result = _run_child(CHILD)
    assert result.stdout.split() == ["True", "True", "True"], result.stderr


CLOCK_CHILD = """
stop = threading.Event()
clock = gcpolicy.settle_on_clock(full_every_s=1.0, stop=stop)
print(gcpolicy.settle_on_clock() is clock, not gc.isenabled(), gc.get_freeze_count() >= 1000)

# Allocations start no collection at all, young or middle: a cycle made now is still there
# after many times THRESHOLDS[0] new objects.
stats = [gc.get_stats()[g]["collections"] for g in range(3)]
gone = cycle()
more = [Node() for _ in range(gcpolicy.THRESHOLDS[0] * 3)]
print([gc.get_stats()[g]["collections"] for g in range(2)] == stats[:2], gone() is not None)

# The clock's next full collection frees it.
deadline = time.monotonic() + 10
while gone() is not None and time.monotonic() < deadline:
    time.sleep(0.01)
print(gone() is None, gc.get_stats()[2]["collections"] > stats[2])

stop.set()
clock.join(timeout=5)
print(gc.isenabled())
"""


def test_the_clock_frees_cycles_in_full_collections_and_allocations_start_none() -> None:
    result = _run_child(CLOCK_CHILD)
    assert result.stdout.split() == ["True"] * 8, (result.stdout, result.stderr)
