"""What the worker's unit tests share: a consumer that never connects, fetched records, and a
sink that keeps what it is handed."""

from __future__ import annotations

from typing import Any, NamedTuple

import faust
from faust.types import TP

from stream.core.records import Message
from stream.worker import batches
from stream.worker import faust_adapter as aurora

EVENTS = "aurora.events.sleep"


def consumer() -> aurora.Consumer:
    """Created on the running loop, never started: nothing here connects to Kafka."""
    app = faust.App("consumer-unit", broker="kafka://127.0.0.1:1")

    async def nothing(*_: Any) -> None:
        return None

    created = aurora.Transport(app.conf.broker_consumer, app).create_consumer(
        callback=nothing, on_partitions_revoked=nothing, on_partitions_assigned=nothing
    )
    assert isinstance(created, aurora.Consumer)
    return created


class Record(NamedTuple):
    offset: int
    key: bytes | None = b"k"
    value: bytes | None = b"{}"


def records(tp: TP, *offsets: int) -> tuple[TP, list[Record]]:
    return tp, [Record(o) for o in offsets]


class Sink:
    topics = frozenset({EVENTS})

    def __init__(self) -> None:
        self.taken: list[list[Message]] = []
        self.acks: list[batches.Acks] = []

    def take(self, messages: list[Message], acks: batches.Acks) -> None:
        self.taken.append(messages)
        self.acks.append(acks)

    async def settle(self) -> None:
        return None

    def pending(self) -> int:
        return sum(a.count for a in self.acks)


def fetching(con: aurora.Consumer, fetched: dict[TP, list[Record]]) -> list[Any]:
    """Make the next fetch return `fetched`; return the rewinds the consumer asks for."""
    rewinds: list[Any] = []

    async def wait_next_records(timeout: float) -> tuple[Any, Any]:
        con._fetched = fetched
        return fetched, set(fetched)

    async def rewind(wanted: Any) -> None:
        rewinds.append(wanted)

    con._wait_next_records = wait_next_records  # type: ignore[method-assign]
    con._rewind = rewind  # type: ignore[method-assign,assignment]
    return rewinds


def with_sink() -> tuple[aurora.Consumer, Sink]:
    """A consumer with flow control on, handing its event batches to a `Sink`."""
    con = consumer()
    con.app.flow_control.resume()
    sink = Sink()
    con.transport.sink = sink  # type: ignore[attr-defined]
    return con, sink


async def drain(con: aurora.Consumer) -> list[Any]:
    return [item async for item in con.getmany(timeout=0.1)]
