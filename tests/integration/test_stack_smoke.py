"""The stack is real: Kafka keeps per-key order, Postgres COPY round-trips, Redis pipelines."""

from __future__ import annotations

import asyncio
import io
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from aiokafka import AIOKafkaConsumer
from kafka import KafkaProducer
from psycopg import sql

from devstack.probes import PROBES
from stream.redis_client import OnlineRedis
from stream.settings import Settings
from tests.conftest import Stack

N_MESSAGES = 10_000
N_KEYS = 97


def test_kafka_keeps_order_per_key(settings: Settings, kafka_topic: Callable[..., str]) -> None:
    topic = kafka_topic(partitions=4)
    producer = KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
    )
    for seq in range(N_MESSAGES):
        key = f"user-{seq % N_KEYS}"
        producer.send(topic, key=key.encode(), value=f"{key}:{seq}".encode())
    producer.flush()
    producer.close()

    received = asyncio.run(_consume(settings, topic, N_MESSAGES))

    assert len(received) == N_MESSAGES
    by_key: dict[str, list[int]] = defaultdict(list)
    partitions_of_key: dict[str, set[int]] = defaultdict(set)
    for partition, key, value in received:
        value_key, value_seq = value.rsplit(":", 1)
        assert value_key == key
        by_key[key].append(int(value_seq))
        partitions_of_key[key].add(partition)
    assert len(by_key) == N_KEYS
    for key, seqs in by_key.items():
        assert seqs == sorted(seqs), f"{key} arrived out of order"
        assert len(partitions_of_key[key]) == 1, f"{key} was spread over partitions"
    assert len({p for ps in partitions_of_key.values() for p in ps}) == 4


async def _consume(settings: Settings, topic: str, expected: int) -> list[tuple[int, str, str]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=f"{topic}.smoke",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    received: list[tuple[int, str, str]] = []
    try:
        async with asyncio.timeout(60):
            while len(received) < expected:
                batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
                for tp, records in batches.items():
                    received += [(tp.partition, r.key.decode(), r.value.decode()) for r in records]
    finally:
        await consumer.stop()
    return received


def test_postgres_copy_round_trip(pg_conn: psycopg.Connection[Any], pg_schema: str) -> None:
    rows = [(f"user-{i}", i * 0.5, f"note with tab\\tand 'quote' {i}") for i in range(5000)]
    buffer = io.StringIO("".join(f"{u}\t{v}\t{n}\n" for u, v, n in rows))
    table = sql.Identifier(pg_schema, "copy_probe")
    with pg_conn.cursor() as cur:
        cur.execute(
            sql.SQL("CREATE TABLE {} (user_id text, value float8, note text)").format(table)
        )
        with cur.copy(sql.SQL("COPY {} FROM STDIN").format(table)) as copy:
            copy.write(buffer.getvalue())
    pg_conn.commit()
    with pg_conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT user_id, value, note FROM {} ORDER BY value").format(table))
        back = cur.fetchall()
    # COPY's text format turns the two characters \t into a real tab.
    assert back == [(u, v, n.replace("\\t", "\t")) for u, v, n in rows]


def test_redis_pipeline_round_trip(redis_client: OnlineRedis, redis_prefix: str) -> None:
    pipe = redis_client.pipeline(transaction=False)
    for i in range(10_000):
        pipe.hset(f"{redis_prefix}{i}", mapping={"count": i, "name": f"user-{i}"})
    assert all(pipe.execute())
    pipe = redis_client.pipeline(transaction=False)
    for i in range(10_000):
        pipe.hgetall(f"{redis_prefix}{i}")
    back = pipe.execute()
    assert back == [
        {b"count": str(i).encode(), b"name": f"user-{i}".encode()} for i in range(10_000)
    ]


def test_every_service_answers_a_real_question(stack: Stack) -> None:
    for name, probe in PROBES.items():
        result = probe(stack.settings)
        assert result.ok, f"{name}: {result.detail}"
    print(f"stack backend: {stack.backend}")


def test_make_up_again_is_harmless(stack: Stack) -> None:
    if stack.backend != "local stack":
        pytest.skip("the local stack's idempotence; containers are started per session")
    before = _pids()
    assert set(before) == {"kafka", "postgres", "redis"}
    up = subprocess.run(
        [sys.executable, "-m", "devstack", "up"], capture_output=True, text=True, check=False
    )
    assert up.returncode == 0, up.stderr
    assert "started" not in up.stderr, "a second `up` started a service again"
    assert _pids() == before


def _pids() -> dict[str, str]:
    status = subprocess.run(
        [sys.executable, "-m", "devstack", "status"], capture_output=True, text=True, check=True
    )
    return dict(re.findall(r"^(\w+)\s+up\s+\S+\s+pid (\d+)", status.stdout, re.MULTILINE))
