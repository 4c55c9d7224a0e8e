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
clock = gcpolicy.settle_on_clock(young_every_s=0.05, full_every_s=2.0, stop=stop)
print(gcpolicy.settle_on_clock() is clock, not gc.isenabled(), gc.get_freeze_count() >= 1000)

# Allocations no longer start a young collection (the clock's are of the middle generation);
# the clock frees a new cycle soon after.
young = gc.get_stats()[0]["collections"]
gone = cycle()
more = [Node() for _ in range(gcpolicy.THRESHOLDS[0] * 3)]
print(gc.get_stats()[0]["collections"] == young)
deadline = time.monotonic() + 5
while gone() is not None and time.monotonic() < deadline:
    time.sleep(0.01)
print(gone() is None)

# A full collection comes every full_every_s: a cycle moved to the oldest generation is freed.
node = Node()
node.itself = node
old = weakref.ref(node)
gc.collect(1)  # the survivors, this node included, go to the oldest generation
fulls = gc.get_stats()[2]["collections"]
del node  # garbage now, but only a full collection walks the oldest generation
time.sleep(0.2)
print(old() is not None)
deadline = time.monotonic() + 10
while old() is not None and time.monotonic() < deadline:
    time.sleep(0.01)
print(old() is None, gc.get_stats()[2]["collections"] > fulls)

stop.set()
clock.join(timeout=5)
print(gc.isenabled())
"""


def test_the_clock_collects_young_cycles_soon_and_old_ones_in_full_collections() -> None:
    result = _run_child(CLOCK_CHILD)
    assert result.stdout.split() == ["True"] * 9, (result.stdout, result.stderr)
