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
"""

from __future__ import annotations

import gc
import logging
from typing import Final

logger = logging.getLogger(__name__)

# A young collection every 100,000 net allocations instead of 700; the middle and old
# generations' thresholds count collections of the one below. Each young collection walks every
# object of the batches still in flight (their messages, events, rows): at 20,000 the worker's
# main process spent 3.0 s of a 600k-event run in young and middle collections, at 100,000
# 1.7 s (bench/README.md, "The archive as it arrived"). 100,000 young objects are a few MB.
THRESHOLDS: Final = (100_000, 20, 100)


def settle() -> None:
    """Freeze what the process holds now and space the collections out."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    logger.debug("garbage collector: %d objects frozen", gc.get_freeze_count())
