"""A delivery stepped once without a task, and finished in one when it had to wait."""

from __future__ import annotations

import asyncio

import pytest

from stream.worker.stepping import Suspended, first_step


async def _ready(value: int) -> int:
    return value * 2


async def _waits(future: asyncio.Future[int], log: list[str]) -> int:
    log.append("started")
    try:
        got = await future
    finally:
        log.append("left")
    await asyncio.sleep(0)  # and suspends once more before it returns
    return got + 1


def test_a_coroutine_that_does_not_wait_finishes_in_its_first_step() -> None:
    finished, value = first_step(_ready(21))
    assert (finished, value) == (True, 42)


def test_a_coroutine_that_waits_finishes_in_a_task_with_its_own_result() -> None:
    async def scenario() -> tuple[int, list[str]]:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        log: list[str] = []
        finished, rest = first_step(_waits(future, log))
        assert not finished and isinstance(rest, Suspended)
        assert log == ["started"]
        task = asyncio.ensure_future(rest)
        await asyncio.sleep(0)
        assert not task.done()
        future.set_result(9)
        return await task, log

    assert asyncio.run(scenario()) == (10, ["started", "left"])


def test_cancelling_the_task_cancels_the_coroutine_where_it_waits() -> None:
    async def scenario() -> list[str]:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        log: list[str] = []
        _, rest = first_step(_waits(future, log))
        task = asyncio.ensure_future(rest)
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return log

    assert asyncio.run(scenario()) == ["started", "left"]


def test_an_error_after_the_wait_reaches_the_awaiter() -> None:
    async def fails(future: asyncio.Future[int]) -> int:
        await future
        raise ValueError("bad event")

    async def scenario() -> None:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        _, rest = first_step(fails(future))
        task = asyncio.ensure_future(rest)
        future.set_result(1)
        with pytest.raises(ValueError, match="bad event"):
            await task

    asyncio.run(scenario())


def test_an_error_in_the_first_step_is_raised_at_once() -> None:
    async def fails() -> int:
        raise KeyError("topic")

    with pytest.raises(KeyError):
        first_step(fails())
