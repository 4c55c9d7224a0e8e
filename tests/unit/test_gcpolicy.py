"""The collector policy: what a process held at set-up is frozen, and cycles made later are still
collected. Run in a child process, so this test's own interpreter keeps CPython's defaults."""

from __future__ import annotations

import subprocess
import sys

CHILD = """
import gc, weakref
from stream import gcpolicy

class Node:
    pass

def cycle():
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)

held = [Node() for _ in range(1000)]
gcpolicy.settle()
print(gc.get_threshold() == gcpolicy.THRESHOLDS, gc.get_freeze_count() >= 1000)

# A cycle made after set-up is freed by the collector's own passes, with no explicit collect:
# a young collection comes after THRESHOLDS[0] more tracked objects are alive.
gone = cycle()
more = [Node() for _ in range(gcpolicy.THRESHOLDS[0] + 1)]
print(gone() is None)
"""


def test_settle_freezes_the_set_up_heap_and_cycles_are_still_collected() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.split() == ["True", "True", "True"], result.stderr
