"""The consumer's hand-over of event batches: what it hands over, acknowledges and holds back."""

from __future__ import annotations

import asyncio
from typing import Any

from faust.types import TP

from stream.core.records import Message
from stream.worker import batches
from tests.unit.worker.fixtures import (
    EVENTS,
    Record,
    drain,
    fetching,
    records,
    with_sink,
)

A, B = TP(EVENTS, 0), TP(EVENTS, 1)


def test_records_before_the_read_offset_are_not_handed_over_again() -> None:
    batch = batches.collect(EVENTS, [records(A, 4, 5, 6), records(B, 0, 1)], {A: 5, B: None})
    # At the read offset itself Faust's loop delivers again (a seek sets it to the next to read).
    assert [(m.partition, m.offset) for m in batch.messages] == [(0, 5), (0, 6), (1, 0), (1, 1)]
    assert batch.offsets == {A: [5, 6], B: [0, 1]}
    assert batch.fetched == {A: [4, 5, 6], B: [0, 1]}
    assert batch.read == {A: 6, B: 1}
    assert batch.gaps == []


def test_offsets_the_log_skips_are_gaps_and_a_tombstone_is_an_empty_event() -> None:
    parts = [(A, [Record(3), Record(7, value=None), Record(8)])]
    batch = batches.collect(EVENTS, parts, {A: 2})
    assert batch.gaps == [(A, 4, 7)]  # from the one after 3 to 7, as Faust's loop marks it
    assert batch.messages[1] == Message(EVENTS, 0, 7, b"k", b"")


def test_a_partition_read_past_its_records_hands_over_nothing() -> None:
    batch = batches.collect(EVENTS, [records(A, 1, 2)], {A: 9})
    assert batch.messages == [] and batch.offsets == {} and batch.read == {}
    assert batch.fetched == {A: [1, 2]}  # delivered, as far as the rewind is concerned


def test_a_fetch_is_handed_over_as_one_batch_and_acknowledged_in_bulk() -> None:
    async def scenario() -> None:
        con, sink = with_sink()
        con.app.topics.acking_topics.add(EVENTS)
        rewinds = fetching(con, dict([records(A, 0, 1, 2), records(B, 0)]))
        assert await drain(con) == []  # nothing goes the per-message way
        assert [[m.offset for m in batch] for batch in sink.taken] == [[0, 1, 2, 0]]
        assert con._read_offset[A] == 2 and con._read_offset[B] == 0
        assert rewinds == []
        assert not con._acked[A]  # only once the batch is written
        con._committed_offset[A] = 0
        sink.acks[0].done()
        sink.acks[0].done()  # twice is once
        assert con._acked[A] == [0, 1, 2] and con._acked[B] == [0]
        assert con._new_offset(A) == 3

    asyncio.run(scenario())


def test_a_fetch_made_before_a_seek_is_not_handed_over_but_read_again() -> None:
    async def scenario() -> None:
        con, sink = with_sink()
        fetched = dict([records(A, 5, 6)])
        rewinds = fetching(con, fetched)
        inner = con._wait_next_records

        async def seek_after_fetch(timeout: float) -> tuple[Any, Any]:
            got = await inner(timeout)
            con.note_seek({A: 3})  # a recovery's seek, say, while the fetch was on its way
            return got

        con._wait_next_records = seek_after_fetch  # type: ignore[method-assign]
        await drain(con)
        assert sink.taken == []
        assert rewinds == [{A: (7, 5)}]  # only if the seek left the position where it was

    asyncio.run(scenario())


def test_a_rebalance_waits_for_the_batches_not_yet_written() -> None:
    async def scenario() -> None:
        con, sink = with_sink()
        fetching(con, dict([records(A, 0, 1)]))
        await drain(con)
        waiting = asyncio.ensure_future(con.wait_empty())
        await asyncio.sleep(0.2)
        assert not waiting.done()
        sink.acks.clear()  # written
        await asyncio.wait_for(waiting, 5)

    asyncio.run(scenario())
