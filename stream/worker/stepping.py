"""Run a coroutine up to its first suspension without a task, and finish it in one if need be.

Faust delivers each fetched message by racing its delivery coroutine against the consumer's
suspend event in `Service.wait_first`, which wraps four coroutines in tasks and waits on them:
about a seventh of the worker's main thread, for deliveries that almost never suspend (they put
the event in a stream queue that has room). Stepping the delivery once tells the common case
apart: it returns at once with no task at all. Only a delivery that did suspend (flow control
during a rebalance, a full queue) is resumed in a task, and raced as before.
"""

from __future__ import annotations

from collections.abc import Coroutine, Generator
from typing import Any


class Suspended:
    """The rest of a coroutine that suspended on `pending` at its first step; awaitable once.

    A task drives it exactly as it would have driven the coroutine: the object the coroutine
    yielded goes to the task, and what the task sends or throws goes back in.
    """

    __slots__ = ("_coro", "_pending")

    def __init__(self, coro: Coroutine[Any, Any, Any], pending: Any) -> None:
        self._coro = coro
        self._pending = pending

    def __await__(self) -> Generator[Any, None, Any]:
        coro, pending = self._coro, self._pending
        while True:
            try:
                yield pending
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # a cancellation, say: the coroutine sees it
                try:
                    pending = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    pending = coro.send(None)
                except StopIteration as stop:
                    return stop.value


def first_step(coro: Coroutine[Any, Any, Any]) -> tuple[bool, Any]:
    """(True, its result) if the coroutine finished at once; else (False, a `Suspended`)."""
    try:
        pending = coro.send(None)
    except StopIteration as stop:
        return True, stop.value
    return False, Suspended(coro, pending)
