"""EventProducer and ensure_topics against the real broker: what goes in comes back, in order."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from kafka import KafkaConsumer
from kafka import TopicPartition as KafkaTopicPartition
from kafka.admin import KafkaAdminClient

from stream.catalog import EVENT_TYPES
from stream.core.events import decode
from stream.errors import EventValidationError
from stream.ops.topics import ensure_topics, topic_names
from stream.producer import EventProducer
from stream.settings import Settings
from stream.synth.generator import GeneratorConfig, generate
from stream.synth.send import send_to_kafka

START = datetime(2024, 3, 4, tzinfo=UTC)


@pytest.fixture
def isolated(settings: Settings, unique: str) -> Iterator[Settings]:
    """Settings whose topics are this test's own; whatever of them exists is deleted after."""
    mine = settings.model_copy(update={"topic_prefix": unique})
    yield mine
    admin = KafkaAdminClient(bootstrap_servers=mine.kafka_bootstrap_servers)
    try:
        made = [name for name in admin.list_topics() if name.startswith(f"{unique}.")]
        if made:
            admin.delete_topics(made)
    finally:
        admin.close()


def test_ensure_topics_is_idempotent(isolated: Settings) -> None:
    expected = [*(f"{isolated.topic_prefix}.{t}" for t in EVENT_TYPES), isolated.dlq_topic]
    assert topic_names(isolated) == expected
    assert ensure_topics(isolated) == expected
    assert ensure_topics(isolated) == []
    admin = KafkaAdminClient(bootstrap_servers=isolated.kafka_bootstrap_servers)
    try:
        described = admin.describe_topics(expected)
    finally:
        admin.close()
    assert {t["name"]: len(t["partitions"]) for t in described} == dict.fromkeys(
        expected, isolated.topic_partitions
    )


def test_topics_command_reports_what_it_did(isolated: Settings) -> None:
    env = {"PATH": "/usr/bin:/bin", **isolated.to_env()}
    run = [sys.executable, "-m", "stream", "topics"]
    first = subprocess.run(run, env=env, capture_output=True, text=True, check=True, timeout=120)
    assert f"created: {isolated.topic_prefix}.activity" in first.stdout
    again = subprocess.run(run, env=env, capture_output=True, text=True, check=True, timeout=120)
    assert "created: none" in again.stdout and isolated.dlq_topic in again.stdout


def test_produced_events_come_back_keyed_and_in_order(isolated: Settings) -> None:
    ensure_topics(isolated)
    config = GeneratorConfig(users=60, days=3, seed=3, start=START, duplicates=0.02)
    events = [g.event for g in generate(config) if g.event is not None]
    assert len(events) > 2000
    with EventProducer(isolated) as producer:
        assert producer.send_many(events) == len(events)
        producer.flush()

    topics = [isolated.topic_for(t) for t in EVENT_TYPES]
    received = asyncio.run(consume(isolated, topics, len(events)))

    assert len(received) == len(events)
    sent_order: dict[tuple[str, str], list[str]] = defaultdict(list)
    for event in events:
        sent_order[isolated.topic_for(event["event_type"]), event["user_id"]].append(
            event["event_id"]
        )
    got_order: dict[tuple[str, str], list[str]] = defaultdict(list)
    partitions: dict[tuple[str, str], set[int]] = defaultdict(set)
    for topic, partition, key, value in received:
        event = decode(value)
        assert key == event["user_id"].encode()
        assert topic == isolated.topic_for(event["event_type"])
        got_order[topic, event["user_id"]].append(event["event_id"])
        partitions[topic, event["user_id"]].add(partition)
    assert got_order == sent_order  # per user and topic, in the order sent
    assert all(len(found) == 1 for found in partitions.values())
    assert sorted(decode(v)["event_id"] for *_, v in received) == sorted(
        e["event_id"] for e in events
    )


def test_invalid_events_send_nothing(isolated: Settings) -> None:
    ensure_topics(isolated)
    good = [g.event for g in generate(GeneratorConfig(5, 1, 1, START)) if g.event is not None]
    bad = {**good[0], "payload": {**good[0]["payload"], "mystery": 1}}
    with EventProducer(isolated) as producer:
        with pytest.raises(EventValidationError) as caught:
            producer.send(bad)
        assert (caught.value.field, caught.value.rule) == (
            "payload.mystery",
            "additionalProperties",
        )
        with pytest.raises(EventValidationError) as caught:
            producer.send_many([*good[:3], bad, *good[3:]])
        assert caught.value.index == 3 and "#3" in str(caught.value)
        producer.flush()
    assert end_offsets(isolated, [isolated.topic_for(t) for t in EVENT_TYPES]) == 0


def test_generated_raw_stream_lands_on_the_claimed_topics(isolated: Settings) -> None:
    ensure_topics(isolated)
    config = GeneratorConfig(20, 2, 8, START, out_of_order=0.1, duplicates=0.05, invalid=0.2)
    generated = list(generate(config))
    with EventProducer(isolated) as producer:
        assert send_to_kafka(generated, producer, isolated) == len(generated)
    received = asyncio.run(
        consume(isolated, [isolated.topic_for(t) for t in EVENT_TYPES], len(generated))
    )
    expected = sorted((isolated.topic_for(g.event_type), g.key, g.raw) for g in generated)
    assert sorted((topic, key, value) for topic, _, key, value in received) == expected
    assert any(not g.valid and g.user_id is None for g in generated)  # garbage went too


async def consume(
    settings: Settings, topics: list[str], expected: int
) -> list[tuple[str, int, bytes, bytes]]:
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=f"{settings.topic_prefix}.check",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    received: list[tuple[str, int, bytes, bytes]] = []
    try:
        async with asyncio.timeout(90):
            while len(received) < expected:
                batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
                for tp, records in batches.items():
                    received += [(tp.topic, tp.partition, r.key, r.value) for r in records]
        # Anything past the expected count would be a message that should not exist.
        extra: Any = await consumer.getmany(timeout_ms=1500)
        received += [
            (tp.topic, tp.partition, r.key, r.value) for tp, rs in extra.items() for r in rs
        ]
    finally:
        await consumer.stop()
    return received


def end_offsets(settings: Settings, topics: list[str]) -> int:
    """How many messages the topics hold, summed over every partition."""
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        partitions = [
            KafkaTopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        assert len(partitions) == len(topics) * settings.topic_partitions
        offsets: dict[Any, int] = consumer.end_offsets(partitions)
    finally:
        consumer.close()
    return sum(offsets.values())
