"""A fetch of an event topic as one batch: what to hand over, what to fetch again, what to commit.

Pure bookkeeping over offsets, tested without a broker (tests/unit/worker/); the consumer
(stream/worker/faust_adapter.py) applies it to Faust's and aiokafka's state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from stream.core.records import Message

# tp -> (the position right after the fetched records, the first undelivered offset)
Rewinds = dict[Any, tuple[int, int]]


def undelivered(fetched: Mapping[Any, list[Any]], delivered: Mapping[Any, list[int]]) -> Rewinds:
    """Per partition, where its position is now and where it must go back to (pure)."""
    rewinds: Rewinds = {}
    for tp, records in fetched.items():
        if not records:
            continue
        offsets = delivered.get(tp, [])
        if len(offsets) == len(records):
            continue
        given = set(offsets)
        first = min(r.offset for r in records if r.offset not in given)
        rewinds[tp] = (records[-1].offset + 1, first)
    return rewinds


@dataclass(slots=True)
class Batch:
    """One topic's fetched records, as the sink takes them."""

    messages: list[Message] = field(default_factory=list)
    offsets: dict[Any, list[int]] = field(default_factory=dict)  # tp -> offsets handed over
    fetched: dict[Any, list[int]] = field(default_factory=dict)  # tp -> every offset fetched
    read: dict[Any, int] = field(default_factory=dict)  # tp -> its read offset after this
    gaps: list[tuple[Any, int, int]] = field(default_factory=list)  # (tp, first, last) missing


def collect(topic: str, parts: Iterable[tuple[Any, list[Any]]], read: Mapping[Any, Any]) -> Batch:
    """The records to hand over (pure): as Faust's loop does per message, those at or past the
    partition's read offset; and where the log skips offsets (compaction, transaction
    markers), the gap, which Faust's commit steps over."""
    batch = Batch()
    messages = batch.messages
    message = Message
    for tp, records in parts:
        last: int | None = read.get(tp)
        given: list[int] = []
        partition = tp.partition
        for record in records:
            offset = record.offset
            if last is None or offset >= last:
                if last and offset - last > 1:
                    batch.gaps.append((tp, last + 1, offset))
                # A null value (a tombstone) is no event: b"" sends it to the dead-letter topic.
                messages.append(message(topic, partition, offset, record.key, record.value or b""))
                given.append(offset)
                last = offset
        batch.fetched[tp] = [r.offset for r in records]
        if given:
            batch.offsets[tp] = given
            batch.read[tp] = given[-1]
    return batch


class Acknowledger(Protocol):
    def ack_offsets(self, tp: Any, offsets: Iterable[int]) -> None:
        """Acknowledge these offsets of one partition."""


class BatchSink(Protocol):
    """Takes the event topics' records a fetch at a time (stream/worker/runtime.py)."""

    topics: frozenset[str]

    def take(self, messages: list[Message], acks: Acks) -> None:
        """Process a batch; call `acks.done()` once its effects are written."""

    async def settle(self) -> None:
        """Wait while the batches taken are too many to hold (backpressure)."""

    def pending(self) -> int:
        """The events taken and not yet acknowledged."""


@dataclass(frozen=True, slots=True)
class Acks:
    """The offsets of one batch, acknowledged in bulk once its effects are written."""

    consumer: Acknowledger
    offsets: Mapping[Any, list[int]]

    @property
    def count(self) -> int:
        return sum(len(o) for o in self.offsets.values())

    def done(self) -> None:
        for tp, offsets in self.offsets.items():
            self.consumer.ack_offsets(tp, offsets)


def head_missing(committed: int | None, acked: list[int], in_gap: bool) -> bool:
    """True when the next offset to commit from was not acknowledged (and is no known gap)."""
    return committed is not None and bool(acked) and min(acked) > committed and not in_gap
