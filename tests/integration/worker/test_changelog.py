"""The changelog producer against real Kafka: every record, tombstones too, in order."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from stream.core.records import Record
from stream.settings import Settings
from stream.worker.changelog import BATCH_BYTES, ChangelogProducer

Got = tuple[int, int, bytes | None, bytes | None]  # partition, offset, key, value


async def _read(settings: Settings, topic: str, partitions: int, total: int) -> list[Got]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        await consumer.seek_to_beginning()
        got: list[Got] = []
        while len(got) < total:
            fetched = await consumer.getmany(timeout_ms=5_000)
            assert fetched, f"only {len(got)} of {total} records came back"
            for messages in fetched.values():
                got += [(m.partition, m.offset, m.key, m.value) for m in messages]
        return got
    finally:
        await consumer.stop()


def test_states_larger_than_batches_arrive_whole_and_in_order(
    settings: Settings, kafka_topic: Callable[..., str]
) -> None:
    topic = kafka_topic("user-state-changelog", partitions=2)
    # 60 states of about 40 KB each per partition: several full batches, cut between states.
    states: list[tuple[int, list[Record]]] = []
    for s in range(120):
        records: list[Record] = [(f"activity|u{s}".encode(), b"h" * 120)]
        records += [(f"activity@{c}|u{s}".encode(), bytes([c]) * 1_900) for c in range(20)]
        records.append((f"activity@99|u{s}".encode(), None))
        states.append((s % 2, records))
    assert sum(len(v or b"") for _, r in states for _, v in r) > 4 * BATCH_BYTES

    async def send() -> dict[int, int]:
        producer = ChangelogProducer(settings, topic)
        try:
            return await producer.send(states)
        finally:
            await producer.stop()

    total = sum(len(r) for _, r in states)
    per_partition = [sum(len(r) for p, r in states if p == partition) for partition in (0, 1)]
    # The last offset of each partition's records, which the local store records as its own.
    assert asyncio.run(send()) == {0: per_partition[0] - 1, 1: per_partition[1] - 1}
    got = asyncio.run(_read(settings, topic, 2, total))
    for partition in (0, 1):
        here = sorted(g for g in got if g[0] == partition)
        want = [record for p, records in states if p == partition for record in records]
        assert [(key, value) for _, _, key, value in here] == want
