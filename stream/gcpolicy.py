"""How the long-running processes use Python's cyclic garbage collector.

Once a process has imported and opened everything, `settle` collects, freezes the survivors
(`gc.freeze`: no collection walks them again) and spaces the young collections out; the worker's
main process collects only on a clock (`settle_on_clock`). Invariant: nothing the pipeline
keeps holds a reference cycle (the user states hold none), so reference counting frees it
as before and the policy changes when memory is walked, never what is freed. Why, and the
figures: docs/decisions/0006-garbage-collection-policy.md.
"""

from __future__ import annotations

import gc
import logging
import threading
from typing import Final

logger = logging.getLogger(__name__)

# A young collection every 100,000 net allocations instead of 700; the middle and old
# generations' thresholds count collections of the one below. Each young collection walks every
# object of the batches still in flight: 100,000 cost half of what 20,000 did (decision 0006).
# 100,000 young objects are a few MB.
THRESHOLDS: Final = (100_000, 20, 100)

# The clock of the worker's main process: a full collection every FULL_EVERY_S, which frees
# the cycles made since the last (the objects in cycles here are few: the states hold none).
FULL_EVERY_S: Final = 600.0

_clock: threading.Thread | None = None


def settle() -> None:
    """Freeze what the process holds now and space the collections out."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    logger.debug("garbage collector: %d objects frozen", gc.get_freeze_count())


def settle_on_clock(
    full_every_s: float = FULL_EVERY_S,
    stop: threading.Event | None = None,
) -> threading.Thread:
    """`settle`, then collect only on a clock, not on allocation counts.

    A thread, not the event loop, keeps the clock: a collection runs at a bytecode boundary as
    an automatic one does, and still runs while the loop is busy or stuck. Once per process;
    `stop` ends it (tests), after which automatic collection is back.
    """
    global _clock
    if _clock is not None and _clock.is_alive():
        return _clock
    settle()
    gc.disable()
    halt = stop or threading.Event()

    def run() -> None:
        try:
            while not halt.wait(full_every_s):
                gc.collect()
        finally:
            gc.enable()

    _clock = threading.Thread(target=run, name="gc-clock", daemon=True)
    _clock.start()
    logger.debug("garbage collector: on a clock, every %.0f s", full_every_s)
    return _clock
