"""The worker's consumer: deliveries raced as Faust races them, held around recovery's seek."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from faust.types import TP

from stream.worker import faust_adapter as aurora
from tests.unit.worker.fixtures import consumer


def run(scenario: Callable[[aurora.Consumer], Awaitable[None]]) -> None:
    async def main() -> None:
        await scenario(consumer())

    asyncio.run(main())


def deliver(log: list[str], gate: asyncio.Event | None = None) -> Callable[[], Awaitable[str]]:
    async def delivery() -> str:
        log.append("started")
        if gate is not None:
            await gate.wait()
        log.append("done")
        return "delivered"

    return delivery


async def waiting_delivery(
    con: aurora.Consumer, log: list[str], gate: asyncio.Event
) -> asyncio.Future[Any]:
    """Faust's race of one delivery, started and left waiting on `gate`."""
    race = asyncio.ensure_future(con.wait_first(deliver(log, gate)(), con.suspend_flow.wait()))
    await asyncio.sleep(0.01)
    assert log == ["started"] and not race.done()
    return race


def test_a_delivery_that_does_not_wait_is_done_inline() -> None:
    async def scenario(con: aurora.Consumer) -> None:
        log: list[str] = []
        results = await con.wait_first(deliver(log)(), con.suspend_flow.wait())
        assert log == ["started", "done"]
        assert results.results == ["delivered"] and not results.stopped
        assert not con._cut_short

    run(scenario)


def test_a_delivery_that_waits_finishes_in_a_task() -> None:
    async def scenario(con: aurora.Consumer) -> None:
        log: list[str] = []
        gate = asyncio.Event()
        race = await waiting_delivery(con, log, gate)
        gate.set()
        results = await race
        assert log == ["started", "done"] and "delivered" in results.results
        assert not con._cut_short

    run(scenario)


def test_a_seek_drops_a_delivery_still_waiting() -> None:
    async def scenario(con: aurora.Consumer) -> None:
        log: list[str] = []
        race = await waiting_delivery(con, log, asyncio.Event())
        con.note_seek({TP("events", 0): 7, TP("events", 1): None})
        await race
        assert log == ["started"]  # never finished: its record comes again after the seek
        assert con._cut_short
        assert con._seek_read == {TP("events", 0): 7, TP("events", 1): None}

    run(scenario)


def test_a_suspended_flow_drops_a_delivery_still_waiting() -> None:
    async def scenario(con: aurora.Consumer) -> None:
        log: list[str] = []
        race = await waiting_delivery(con, log, asyncio.Event())
        con.suspend_flow.set()  # what Faust does when a rebalance starts
        await race
        assert log == ["started"] and con._cut_short

    run(scenario)


def test_resuming_stream_partitions_holds_flow_control_until_faust_resumes_it() -> None:
    async def scenario(con: aurora.Consumer) -> None:
        flow = con.app.flow_control
        flow.resume()
        con.resume_partitions({TP("events", 0)})
        assert not flow.is_active()  # deliveries wait for the resume after recovery's seek
        flow.resume()
        con.release_held_flow()  # nothing left to release
        assert flow.is_active()

    run(scenario)


def test_a_hold_whose_seek_failed_is_released() -> None:
    async def scenario(con: aurora.Consumer) -> None:
        flow = con.app.flow_control
        flow.resume()
        con.resume_partitions({TP("events", 0)})
        con.release_held_flow()
        assert flow.is_active()

    run(scenario)
