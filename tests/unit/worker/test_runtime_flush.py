"""The flusher's wait for a fuller flush: until enough events came, or the oldest waited enough."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

from faust.types import TP

from stream.core.ingest import BatchResult
from stream.settings import Settings
from stream.worker.batches import Acks
from stream.worker.runtime import Pending, Runtime

EVENTS = TP("aurora.events.sleep", 0)


def runtime(flush_min: int, wait_s: float, queue_max: int = 24_000) -> Runtime:
    settings = Settings().model_copy(
        update={
            "worker_flush_min": flush_min,
            "worker_flush_wait_s": wait_s,
            "worker_queue_max": queue_max,
        }
    )
    return Runtime(settings, SimpleNamespace(name="user-state", data={}), dlq=None)


def add(rt: Runtime, events: int) -> None:
    """A batch of `events` taken, as the consumer hands it over (without starting the flusher)."""
    pending = Pending(BatchResult(), Acks(None, {EVENTS: list(range(events))}), time.monotonic())  # type: ignore[arg-type]
    rt._queue.append(pending)
    rt._queued_events += pending.events
    rt._wake.set()


async def filled(rt: Runtime) -> float:
    began = time.monotonic()
    await asyncio.wait_for(rt._fill(), 10)
    return time.monotonic() - began


def test_a_small_queue_waits_for_the_oldest_batch_to_be_old_enough() -> None:
    async def scenario() -> None:
        rt = runtime(flush_min=1_000, wait_s=0.3)
        add(rt, 10)
        assert 0.25 < await filled(rt) < 2

    asyncio.run(scenario())


def test_a_queue_that_reaches_the_minimum_goes_at_once() -> None:
    async def scenario() -> None:
        rt = runtime(flush_min=1_000, wait_s=5)
        add(rt, 10)
        asyncio.get_running_loop().call_later(0.1, add, rt, 990)
        assert await filled(rt) < 1
        add(rt, 1_000)
        assert await filled(rt) < 0.05  # full already

    asyncio.run(scenario())


def test_no_wait_while_the_consumer_waits_on_backpressure_or_when_turned_off() -> None:
    async def scenario() -> None:
        rt = runtime(flush_min=1_000, wait_s=5, queue_max=50)
        add(rt, 60)  # more than the queue may hold: the consumer is waiting for this flush
        assert await filled(rt) < 0.05
        off = runtime(flush_min=0, wait_s=5)
        add(off, 1)
        assert await filled(off) < 0.05

    asyncio.run(scenario())


def test_no_wait_at_the_end_of_the_log() -> None:
    async def scenario() -> None:
        # The same queue waits while behind (the first test here, behind as a worker starts).
        rt = runtime(flush_min=1_000, wait_s=5)
        rt.behind = False  # as the lag reading says when the consumer has caught up
        add(rt, 10)
        assert await filled(rt) < 0.05

    asyncio.run(scenario())


def test_the_least_recently_used_states_leave_memory_but_not_one_a_flush_still_writes() -> None:
    rt = runtime(flush_min=1, wait_s=0)
    rt.settings = rt.settings.model_copy(update={"worker_state_cache": 2})
    for user in ("a", "b", "c"):
        rt.load_state(user, "sleep")
    rt.states[("a", "sleep")].pending = 1  # its store write is in flight
    rt.load_state("b", "sleep")  # used again: the newest
    assert rt.evict() == 1
    assert list(rt.states) == [("a", "sleep"), ("b", "sleep")]
    rt.states[("a", "sleep")].pending = 0
    assert rt.evict() == 0  # at the cap, nothing more to drop
