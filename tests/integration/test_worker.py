"""The golden end-to-end test: generator -> Kafka -> Faust worker -> Redis and Postgres.

Every online feature of every user and every offline snapshot row must equal the independent
pandas reference (tests/reference.py), the archive must hold each valid event once, and the DLQ
exactly the invalid messages, also when the worker is SIGKILLed mid-stream and restarted.
"""

from __future__ import annotations

import base64
import math
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg2
import pytest
from feast import FeatureStore
from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient

from devstack.proc import children, pid_alive
from stream.catalog import VIEWS, features_of
from stream.ops.prefix import IN_PREFIX, prefix_bounds
from stream.ops.topics import ensure_topics
from stream.producer import EventProducer
from stream.settings import Settings
from stream.synth.generator import GeneratedEvent, GeneratorConfig, generate
from tests.reference import RefRow, rows_in_arrival_order

Worker = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def stream_settings(feast_settings: Settings, unique: str) -> Iterator[Settings]:
    """This test's own topics, consumer group and changelog; topics deleted afterwards."""
    mine = feast_settings.model_copy(
        update={
            "topic_prefix": unique,
            "worker_app_id": f"{unique}-worker",
            "worker_sweep_interval_s": 3600.0,
        }
    )
    ensure_topics(mine)
    yield mine
    admin = KafkaAdminClient(bootstrap_servers=mine.kafka_bootstrap_servers)
    try:
        made = [t for t in admin.list_topics() if t.startswith(unique)]
        if made:
            admin.delete_topics(made)
    finally:
        admin.close()


@pytest.fixture
def start_worker(stream_settings: Settings, tmp_path: Path) -> Iterator[Worker]:
    started: list[subprocess.Popen[bytes]] = []

    def start(settings: Settings | None = None) -> subprocess.Popen[bytes]:
        log = (tmp_path / f"worker-{len(started)}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "stream", "worker", "--loglevel", "info"],
            env={**os.environ, **(settings or stream_settings).to_env()},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
            start_new_session=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def traffic(unique: str, users: int = 24, days: int = 3) -> list[GeneratedEvent]:
    config = GeneratorConfig(
        users=users,
        days=days,
        # Event ids follow from the seed, and the archive keys on event_id across tests.
        seed=int(unique[1:9], 16),
        start=datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=days),
        out_of_order=0.05,
        duplicates=0.03,
        invalid=0.02,
        user_prefix=f"{unique}-",
    )
    return list(generate(config))


def produce(settings: Settings, events: list[GeneratedEvent]) -> None:
    with EventProducer(settings) as producer:
        for generated in events:
            producer.send_raw(
                settings.topic_for(generated.event_type), generated.key, generated.raw
            )
        producer.flush()


def archived(conn: psycopg2.extensions.connection, prefix: str) -> int:
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT count(*) FROM raw_events WHERE {IN_PREFIX}", prefix_bounds(f"{prefix}-")
        )
        row = cur.fetchone()
    conn.rollback()
    return int(row[0]) if row else 0


def offline_rows(conn: psycopg2.extensions.connection, prefix: str) -> int:
    total = 0
    with conn.cursor() as cur:
        for spec in VIEWS:
            cur.execute(
                f"SELECT count(*) FROM {spec.table} WHERE {IN_PREFIX}",
                prefix_bounds(f"{prefix}-"),
            )
            row = cur.fetchone()
            total += int(row[0]) if row else 0
    conn.rollback()
    return total


def settle(store: FeatureStore, want: list[RefRow], timeout_s: float = 30) -> None:
    """Online rows follow the offline ones in each flush; give the last flush a moment."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            check_online(store, want)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str, logs: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            tail = "\n".join(
                p.read_text(errors="replace")[-3000:] for p in sorted(logs.glob("worker-*.log"))
            )
            pytest.fail(f"timed out waiting for {what}\n{tail}")
        time.sleep(1)


def expected_rows(events: list[GeneratedEvent]) -> list[RefRow]:
    return rows_in_arrival_order([g.event for g in events if g.valid and g.event is not None])


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


def check_online(store: FeatureStore, want: list[RefRow]) -> None:
    final: dict[tuple[str, str], RefRow] = {}
    for row in want:
        final[(row.view, row.user_id)] = row
    for spec in VIEWS:
        users = sorted(u for v, u in final if v == spec.name)
        refs = [f"{spec.name}:{f.name}" for f in features_of(spec.name)]
        got = store.get_online_features(
            features=refs, entity_rows=[{"user_id": u} for u in users]
        ).to_dict()
        for i, user in enumerate(users):
            for f in features_of(spec.name):
                expected = final[(spec.name, user)].values[f.name]
                assert same(got[f.name][i], expected), (
                    spec.name,
                    user,
                    f.name,
                    got[f.name][i],
                    expected,
                )


def check_offline(conn: psycopg2.extensions.connection, prefix: str, want: list[RefRow]) -> None:
    for spec in VIEWS:
        names = [f.name for f in features_of(spec.name)]
        with conn.cursor() as cur:
            cur.execute(
                f"SELECT user_id, event_timestamp, {', '.join(names)} FROM {spec.table} "
                f"WHERE {IN_PREFIX}",
                prefix_bounds(f"{prefix}-"),
            )
            stored = {(r[0], r[1]): r[2:] for r in cur.fetchall()}
        conn.rollback()
        expected = {
            (
                r.user_id,
                datetime.fromtimestamp(r.row_us // 1_000_000, UTC).replace(
                    microsecond=r.row_us % 1_000_000
                ),
            ): r
            for r in want
            if r.view == spec.name
        }
        assert set(stored) == set(expected), f"{spec.name}: snapshot rows differ"
        for key, values in stored.items():
            for name, value in zip(names, values, strict=True):
                assert same(value, expected[key].values[name]), (spec.name, key, name)


def check_dlq(settings: Settings, events: list[GeneratedEvent]) -> None:
    invalid = sorted(g.raw for g in events if not g.valid)
    consumer = KafkaConsumer(
        settings.dlq_topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
    )
    records = [orjson.loads(m.value) for m in consumer]
    consumer.close()
    got = sorted(base64.b64decode(r["value_b64"]) for r in records)
    assert set(got) == set(invalid)
    assert all(
        r["error"]["rule"] and r["source"]["topic"].startswith(settings.topic_prefix)
        for r in records
    )
    return None


def verify_all(
    settings: Settings,
    store: FeatureStore,
    conn: psycopg2.extensions.connection,
    unique: str,
    events: list[GeneratedEvent],
    logs: Path,
) -> None:
    """Wait for the worker to finish, then compare archive, offline, online and DLQ."""
    want = expected_rows(events)
    valid_unique = len({g.event["event_id"] for g in events if g.valid and g.event})
    wait_for(lambda: archived(conn, unique) == valid_unique, 300, "the archive", logs)
    wait_for(lambda: offline_rows(conn, unique) >= len(want), 60, "the snapshots", logs)
    check_offline(conn, unique, want)
    settle(store, want)
    check_dlq(settings, events)


def test_golden_stream_equals_the_reference(
    stream_settings: Settings,
    start_worker: Worker,
    feature_store: FeatureStore,
    pg_conn: psycopg2.extensions.connection,
    unique: str,
    tmp_path: Path,
) -> None:
    events = traffic(unique)
    start_worker()
    produce(stream_settings, events)
    verify_all(stream_settings, feature_store, pg_conn, unique, events, tmp_path)


def test_sigkill_mid_stream_loses_and_doubles_nothing(
    stream_settings: Settings,
    start_worker: Worker,
    feature_store: FeatureStore,
    pg_conn: psycopg2.extensions.connection,
    unique: str,
    tmp_path: Path,
) -> None:
    events = traffic(unique)
    first = start_worker()
    produce(stream_settings, events[: len(events) // 2])
    some = len(events) // 8
    wait_for(lambda: archived(pg_conn, unique) > some, 240, "a first part", tmp_path)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    produce(stream_settings, events[len(events) // 2 :])
    # The new worker catches up through a queue a few fetches deep, so the consumer waits for
    # the writer (backpressure) on nearly every batch it takes.
    start_worker(
        stream_settings.model_copy(update={"worker_batch_max": 50, "worker_queue_max": 120})
    )
    verify_all(stream_settings, feature_store, pg_conn, unique, events, tmp_path)


def test_idle_users_decay_after_the_sweep(
    stream_settings: Settings,
    start_worker: Worker,
    feature_store: FeatureStore,
    pg_conn: psycopg2.extensions.connection,
    unique: str,
    tmp_path: Path,
) -> None:
    from stream.core.events import encode
    from tests.reference import features_at, flat

    user = f"{unique}-idle"
    at = datetime.now(UTC) - timedelta(hours=25)
    event: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "user_id": user,
        "event_type": "activity",
        "event_timestamp": at.isoformat(timespec="milliseconds"),
        "schema_version": 1,
        "source_app": "aurora-ios",
        "payload": {
            "activity_type": "walking",
            "duration_minutes": 30,
            "energy_level": 6,
            "mood": 7,
        },
    }
    start_worker(stream_settings.model_copy(update={"worker_sweep_interval_s": 2.0}))
    with EventProducer(stream_settings) as producer:
        producer.send_raw(stream_settings.topic_for("activity"), user.encode(), encode(event))
        producer.flush()

    def rows() -> list[tuple[Any, ...]]:
        with pg_conn.cursor() as cur:
            cur.execute(
                "SELECT event_timestamp, activity_count_24h, activity_count_7d "
                "FROM user_activity_features WHERE user_id = %s ORDER BY event_timestamp",
                (user,),
            )
            found = cur.fetchall()
        pg_conn.rollback()
        return found

    wait_for(lambda: len(rows()) >= 2, 120, "the sweep's row", tmp_path)
    (first_at, first_24h, _), (swept_at, swept_24h, swept_7d) = rows()[:2]
    assert first_at == datetime.fromisoformat(event["event_timestamp"]) and first_24h == 1
    swept_us = int(swept_at.timestamp()) * 1_000_000 + swept_at.microsecond
    reference = features_at([flat(event)], "activity", user, swept_us).values
    assert (swept_24h, swept_7d) == (0, 1)
    assert (reference["activity_count_24h"], reference["activity_count_7d"]) == (0, 1)
    online = feature_store.get_online_features(
        features=["user_activity_features:activity_count_24h"], entity_rows=[{"user_id": user}]
    ).to_dict()
    assert online["activity_count_24h"] == [0]


def test_the_writer_process_exits_with_a_killed_worker(
    stream_settings: Settings, start_worker: Worker
) -> None:
    """The writer ignores SIGTERM (the worker shuts it down); it must not outlive a SIGKILL."""
    worker = start_worker()
    deadline = time.monotonic() + 120
    writers: list[int] = []
    while not writers:
        assert worker.poll() is None, "the worker exited on its own"
        assert time.monotonic() < deadline, "the worker started no writer process"
        # The writer is the child that is not multiprocessing's resource tracker.
        writers = [
            c
            for c in children(worker.pid)
            if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()
        ]
        time.sleep(0.5)
    os.kill(worker.pid, signal.SIGKILL)  # the worker only, not its process group
    worker.wait(timeout=10)
    deadline = time.monotonic() + 15
    while any(pid_alive(w) for w in writers):
        assert time.monotonic() < deadline, f"writer {writers} outlived its worker"
        time.sleep(0.2)


def worker_processes(supervisor: subprocess.Popen[bytes], want: int) -> list[int]:
    """The supervisor's worker processes, once it has started `want` of them."""
    deadline = time.monotonic() + 60
    while len(found := children(supervisor.pid)) < want:
        assert supervisor.poll() is None, f"the supervisor exited ({supervisor.returncode})"
        assert time.monotonic() < deadline, f"{len(found)} of {want} worker processes started"
        time.sleep(0.2)
    return found


def wait_gone(pids: list[int], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while alive := [p for p in pids if pid_alive(p)]:
        if time.monotonic() > deadline:
            for pid in alive:  # not left behind by a failing test
                os.kill(pid, signal.SIGKILL)
            pytest.fail(f"worker processes {alive} still running after {timeout_s:.0f}s")
        time.sleep(0.2)


def test_two_worker_processes_under_one_command_equal_the_reference(
    stream_settings: Settings,
    start_worker: Worker,
    feature_store: FeatureStore,
    pg_conn: psycopg2.extensions.connection,
    unique: str,
    tmp_path: Path,
) -> None:
    supervisor = start_worker(stream_settings.model_copy(update={"worker_processes": 2}))
    workers = worker_processes(supervisor, 2)
    events = traffic(unique)
    produce(stream_settings, events)
    verify_all(stream_settings, feature_store, pg_conn, unique, events, tmp_path)
    assert all(pid_alive(w) for w in workers)
    # SIGTERM reaches the supervisor alone (its workers have sessions of their own).
    os.killpg(supervisor.pid, signal.SIGTERM)
    assert supervisor.wait(timeout=90) == 0
    wait_gone(workers, 5)


def test_a_worker_process_that_dies_stops_the_others(
    stream_settings: Settings, start_worker: Worker
) -> None:
    supervisor = start_worker(stream_settings.model_copy(update={"worker_processes": 2}))
    killed, other = worker_processes(supervisor, 2)
    os.kill(killed, signal.SIGKILL)
    # Its orchestrator must see the failure: the supervisor exits as the killed worker did.
    assert supervisor.wait(timeout=90) == 128 + signal.SIGKILL
    wait_gone([other], 5)


def test_worker_processes_stop_when_their_supervisor_is_killed(
    stream_settings: Settings, start_worker: Worker
) -> None:
    supervisor = start_worker(stream_settings.model_copy(update={"worker_processes": 2}))
    workers = worker_processes(supervisor, 2)
    os.kill(supervisor.pid, signal.SIGKILL)
    supervisor.wait(timeout=10)
    # Each notices within a second, then stops as SIGTERM stops it.
    wait_gone(workers, 90)
