"""aiokafka's bare records for the event topics: what `collect` hands over is unchanged."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiokafka.consumer import fetcher
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import ConsumerRecord, TopicPartition

from stream.worker import aiokafka_adapter, batches
from stream.worker import faust_adapter as aurora
from tests.unit.worker.fixtures import with_sink

EVENTS, OTHER = "aurora.events.sleep", "aurora-features-user-state-changelog"


def fetched(topic: str, values: list[bytes | None]) -> list[Any]:
    """A partition's records as aiokafka's fetcher reads them from a fetch response."""
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    for offset, value in enumerate(values):
        builder.append(
            offset, timestamp=1_700_000_000_000, key=b"u%d" % offset, value=value, headers=[]
        )
    records = MemoryRecords(bytes(builder.build()))
    return list(
        fetcher.PartitionRecords(
            TopicPartition(topic, 3), records, [], 0, None, None, True, fetcher.READ_UNCOMMITTED
        )
    )


def in_thread(asked: frozenset[str] | None, topic: str, values: list[bytes | None]) -> list[Any]:
    """`fetched` in a new thread, after that thread asked for bare records of `asked`."""

    def run() -> list[Any]:
        if asked is not None:
            aiokafka_adapter.fetch_bare(asked)
        return fetched(topic, values)

    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(run).result()


def test_an_asked_topic_s_records_come_bare_and_collect_the_same() -> None:
    values = [b'{"a": 1}', None, b'{"b": 2}']
    bare = in_thread(frozenset({EVENTS}), EVENTS, values)
    wrapped = in_thread(None, EVENTS, values)
    assert not any(isinstance(r, ConsumerRecord) for r in bare)
    assert all(isinstance(r, ConsumerRecord) for r in wrapped)
    tp = TopicPartition(EVENTS, 3)
    assert batches.collect(EVENTS, [(tp, bare)], {}) == batches.collect(EVENTS, [(tp, wrapped)], {})
    messages = batches.collect(EVENTS, [(tp, bare)], {}).messages
    assert [(m.partition, m.offset, m.key, m.value) for m in messages] == [
        (3, 0, b"u0", b'{"a": 1}'),
        (3, 1, b"u1", b""),  # a tombstone, which goes to the dead-letter topic
        (3, 2, b"u2", b'{"b": 2}'),
    ]


def test_other_topics_and_other_threads_keep_aiokafka_s_records() -> None:
    # The changelog's records take Faust's per-record path, which reads a ConsumerRecord.
    records = in_thread(frozenset({EVENTS}), OTHER, [b"x"])
    assert isinstance(records[0], ConsumerRecord) and records[0].topic == OTHER
    # This thread asked for nothing: a test's or a tool's own aiokafka consumer is unchanged.
    assert isinstance(fetched(EVENTS, [b"x"])[0], ConsumerRecord)


def test_the_worker_s_consumer_thread_is_the_one_that_asks() -> None:
    async def scenario() -> None:
        con, sink = with_sink()
        assert isinstance(con._thread, aurora.ConsumerThread)
        assert con._thread.consumer is con and con.sink is sink

    asyncio.run(scenario())
