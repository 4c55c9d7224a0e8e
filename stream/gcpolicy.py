"""How the worker's and replay's processes use Python's cyclic garbage collector.

They hold large heaps that the collector cannot free: a quarter to half a million objects from
imports (Feast, pandas, pyarrow, Faust), and in the worker's and replay's main processes the
user states, which grow with the users seen. CPython's defaults (700, 10, 10) run a full
collection each time the long-lived objects grew by a quarter, and each one walks every object
again.

Measured with `bench_ingest` at 300k events (bench/README.md, "Garbage collection"): on the
defaults the main process spent 18 s in the collector (14 of them in 26 full collections) and
the writer process 12 s (10 in 72), a sixth of all the CPU the pipeline used. With this policy:
4 s and 2 s. `bench_replay` at 200k events: its aggregation 50% faster, the whole replay 20%.

So, once a process has imported and opened everything: collect, then move the survivors to the
permanent generation (`gc.freeze`), which no collection walks again; and collect the young
generation less often. Objects freed by reference counting (nearly all of them, the user
states included: they hold no cycles) are freed as before.

The worker's main process goes further: it collects only on a clock (`settle_on_clock`), a
full collection every FULL_EVERY_S and nothing in between. Its young collections found almost
nothing to free (0-7 objects each in a 600k-event run) but walked every object made since the
last one: the new tiles and states, which live on, and the batches in flight. Counted in
allocations they came every 2,400 events; every 2 s instead they still took 70-240 ms each, a
twentieth of the main thread (bench/README.md, "Rows straight to Redis; the collector on a
clock" and "No young collections in the worker"). A long-lived object is walked by the full
collections either way.
"""

from __future__ import annotations

import gc
import logging
import threading
from typing import Final

logger = logging.getLogger(__name__)

# A young collection every 100,000 net allocations instead of 700; the middle and old
# generations' thresholds count collections of the one below. Each young collection walks every
# object of the batches still in flight (their messages, events, rows): at 20,000 the worker's
# main process spent 3.0 s of a 600k-event run in young and middle collections, at 100,000
# 1.7 s (bench/README.md, "The archive as it arrived"). 100,000 young objects are a few MB.
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
