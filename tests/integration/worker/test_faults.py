"""Faults during a sustained stream: a service restarts, a worker of two dies.

After each, the archive, the offline snapshots, the online rows and the DLQ are compared with
the reference computation: nothing lost, nothing counted twice. Each test reports events in,
events archived, rows written, writes retried and the time to recover; pytest prints them in its
summary ("fault report"). Restarting a server needs the local stack (CI's); with
testcontainers these tests are skipped.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from feast import FeatureStore

from devstack.kafka import Kafka
from devstack.postgres import Postgres
from devstack.redis_server import Redis
from devstack.service import LocalService
from stream.settings import Settings
from tests.conftest import FAULT_REPORT, Stack
from tests.integration.helpers import (
    Worker,
    archived,
    distinct_valid,
    offline_rows,
    produce,
    traffic,
    verify_all,
    wait_for,
)

pytestmark = pytest.mark.integration

SERVICES: dict[str, Callable[[Settings], LocalService]] = {
    "redis": Redis,
    "postgres": Postgres,
    "kafka": Kafka,
}
DOWN_S = 6.0


@pytest.fixture
def local(stack: Stack) -> Stack:
    if stack.backend != "local stack":
        pytest.skip("restarting a server needs the local stack")
    return stack


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[..., None]:
    def add(**fields: Any) -> None:
        request.config.stash.setdefault(FAULT_REPORT, []).append(fields)

    return add


@pytest.fixture
def owner_conn(settings: Settings) -> Iterator[Callable[[], psycopg.Connection[Any]]]:
    """Connections opened on demand: one opened before a Postgres restart dies with it."""
    opened: list[psycopg.Connection[Any]] = []

    def connect() -> psycopg.Connection[Any]:
        conn = psycopg.connect(settings.postgres_conninfo())
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.close()


def in_logs(logs: Path, text: str) -> int:
    return sum(p.read_text(errors="replace").count(text) for p in logs.glob("worker-*.log"))


def retried(logs: Path) -> int:
    return in_logs(logs, "retrying in")


def consumer_repairs(logs: Path) -> str:
    """How often the worker re-read records Faust dropped, and how often the watchdog acted."""
    return (
        f"{in_logs(logs, 'fetched records Faust did not deliver')} re-reads, "
        f"{in_logs(logs, 'reading again from the committed offsets')} watchdog seeks"
    )


@pytest.mark.parametrize("service", list(SERVICES))
def test_a_server_restart_mid_stream_loses_and_doubles_nothing(
    service: str,
    local: Stack,
    stream_settings: Settings,
    start_worker: Worker,
    feature_store: FeatureStore,
    owner_conn: Callable[[], psycopg.Connection[Any]],
    report: Callable[..., None],
    unique: str,
    tmp_path: Path,
) -> None:
    events = traffic(unique, users=16, days=2)
    half = len(events) // 2
    distinct = distinct_valid(events)
    worker = start_worker()
    produce(stream_settings, events[:half])
    conn = owner_conn()
    wait_for(lambda: archived(conn, unique) > distinct // 4, 240, "a first part", tmp_path)
    conn.close()

    server = SERVICES[service](local.settings)
    went_down = time.monotonic()
    server.down()
    if service != "kafka":
        # The stream goes on while the server is away: the worker must hold and retry.
        produce(stream_settings, events[half:])
    time.sleep(DOWN_S)
    server.up()
    back = time.monotonic()
    if service == "kafka":
        produce(stream_settings, events[half:])

    conn = owner_conn()
    wait_for(lambda: archived(conn, unique) == distinct, 300, "the archive", tmp_path)
    recovered_s = time.monotonic() - back
    verify_all(stream_settings, feature_store, conn, unique, events, tmp_path)
    assert worker.poll() is None, "the worker exited instead of waiting for the server"
    report(
        fault=f"{service} restart ({back - went_down:.0f}s down)",
        events_in=len(events),
        archived=archived(conn, unique),
        rows=offline_rows(conn, unique),
        retried=retried(tmp_path),
        recovered_s=round(recovered_s, 1),
        consumer=consumer_repairs(tmp_path),
    )


def test_two_workers_one_killed_the_other_takes_over(
    local: Stack,
    stream_settings: Settings,
    start_worker: Worker,
    feature_store: FeatureStore,
    owner_conn: Callable[[], psycopg.Connection[Any]],
    report: Callable[..., None],
    unique: str,
    tmp_path: Path,
) -> None:
    quick = stream_settings.model_copy(update={"worker_session_timeout_s": 10.0})
    events = traffic(unique, users=16, days=2)
    half = len(events) // 2
    distinct = distinct_valid(events)
    doomed = start_worker(quick)
    survivor = start_worker(quick)
    produce(quick, events[:half])
    conn = owner_conn()
    wait_for(lambda: archived(conn, unique) > distinct // 4, 240, "a first part", tmp_path)
    os.killpg(doomed.pid, signal.SIGKILL)
    doomed.wait(timeout=30)
    killed = time.monotonic()
    produce(quick, events[half:])
    wait_for(lambda: archived(conn, unique) == distinct, 300, "the archive", tmp_path)
    recovered_s = time.monotonic() - killed
    verify_all(quick, feature_store, conn, unique, events, tmp_path)
    assert survivor.poll() is None
    report(
        fault="1 of 2 workers SIGKILLed (rebalance)",
        events_in=len(events),
        archived=archived(conn, unique),
        rows=offline_rows(conn, unique),
        retried=retried(tmp_path),
        recovered_s=round(recovered_s, 1),
        consumer=consumer_repairs(tmp_path),
    )
