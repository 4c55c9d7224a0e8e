"""The golden end-to-end test: generator -> Kafka -> Faust worker -> Redis and Postgres.

Every online feature of every user and every offline snapshot row must equal the independent
pandas reference (tests/reference.py), the archive must hold each valid event once, and the DLQ
exactly the invalid messages, also when the worker is SIGKILLed mid-stream and restarted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from feast import FeatureStore

from devstack.proc import children, pid_alive
from stream.producer import EventProducer
from stream.settings import Settings
from tests.integration.helpers import Worker, archived, produce, traffic, verify_all, wait_for


def test_golden_stream_equals_the_reference(
    stream_settings: Settings,
    start_worker: Worker,
    feature_store: FeatureStore,
    pg_conn: psycopg.Connection[Any],
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
    pg_conn: psycopg.Connection[Any],
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
    pg_conn: psycopg.Connection[Any],
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
    pg_conn: psycopg.Connection[Any],
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
