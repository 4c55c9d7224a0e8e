"""What the integration tests share: traffic to send, and checks of every store against the
independent reference (tests/reference.py)."""

from __future__ import annotations

import base64
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import psycopg
import pytest
from feast import FeatureStore
from kafka import KafkaConsumer

from stream.catalog import VIEWS, features_of
from stream.ops.prefix import IN_PREFIX, prefix_bounds
from stream.producer import EventProducer
from stream.settings import Settings
from stream.synth.generator import GeneratedEvent, GeneratorConfig, generate
from tests.containers import free_port
from tests.reference import RefRow, rows_in_arrival_order

# Starts a worker (`python -m stream worker`) with these settings, or the test's own.
Worker = Callable[..., subprocess.Popen[bytes]]


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


def distinct_valid(events: list[GeneratedEvent]) -> int:
    """How many rows the archive takes for `events`: the valid ones, a duplicate once."""
    return len({g.event["event_id"] for g in events if g.valid and g.event})


def produce_archived(
    settings: Settings,
    conn: psycopg.Connection[Any],
    unique: str,
    events: list[GeneratedEvent],
    what: str,
    logs: Path,
    timeout_s: float = 240,
) -> None:
    """Produce `events` and wait until the archive holds them (and whatever came before)."""
    produce(settings, events)
    want = distinct_valid(events)
    wait_for(lambda: archived(conn, unique) >= want, timeout_s, what, logs)


def archived(conn: psycopg.Connection[Any], prefix: str) -> int:
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT count(*) FROM raw_events WHERE {IN_PREFIX}", prefix_bounds(f"{prefix}-")
        )
        row = cur.fetchone()
    conn.rollback()
    return int(row[0]) if row else 0


def offline_rows(conn: psycopg.Connection[Any], prefix: str) -> int:
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


def _final_rows(want: list[RefRow]) -> dict[tuple[str, str], RefRow]:
    """Each (view, user)'s last row of `want`: what the online store holds in the end."""
    return {(row.view, row.user_id): row for row in want}


def check_online(store: FeatureStore, want: list[RefRow]) -> None:
    final = _final_rows(want)
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


def check_offline(conn: psycopg.Connection[Any], prefix: str, want: list[RefRow]) -> None:
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
    conn: psycopg.Connection[Any],
    unique: str,
    events: list[GeneratedEvent],
    logs: Path,
) -> None:
    """Wait for the worker to finish, then compare archive, offline, online and DLQ."""
    want = expected_rows(events)
    valid_unique = distinct_valid(events)
    wait_for(lambda: archived(conn, unique) == valid_unique, 300, "the archive", logs)
    wait_for(lambda: offline_rows(conn, unique) >= len(want), 60, "the snapshots", logs)
    check_offline(conn, unique, want)
    settle(store, want)
    check_dlq(settings, events)


def snapshot_rows(view_name: str, users: list[str], at: datetime, base: float) -> pd.DataFrame:
    """One row per user with every feature of the view set from `base` (distinct per column)."""
    rows: list[dict[str, Any]] = []
    for n, user in enumerate(users):
        row: dict[str, Any] = {"user_id": user, "event_timestamp": at}
        for i, spec in enumerate(features_of(view_name)):
            if spec.dtype == "int64":
                row[spec.name] = int(base) + i + n
            elif spec.dtype == "float64":
                row[spec.name] = round(base + i / 10 + n, 3)
            else:
                row[spec.name] = f"walking-{int(base)}-{n}"
        rows.append(row)
    return pd.DataFrame(rows)


def run_stream(
    settings: Settings, *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`python -m stream ARGS` in a child process configured with these settings."""
    return subprocess.run(
        [sys.executable, "-m", "stream", *args],
        env={**os.environ, **settings.to_env()},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def post_json(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(  # noqa: S310 - loopback URL built by the test
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.loads(response.read() or b"null")


@contextmanager
def feature_server(settings: Settings) -> Iterator[str]:
    """Feast's REST feature server (`python -m stream feast serve`) on a free loopback port
    with these settings; yields its base URL once /health answers."""
    port = free_port()
    argv = [sys.executable, "-m", "stream", "feast", "serve", "--host", "127.0.0.1"]
    # A file, not a pipe nobody reads while the server runs: a server logging more than a pipe
    # holds (with permissions enforced, Feast logs every decision) would block on its writes.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [*argv, "--port", f"{port}"],
            env={**os.environ, **settings.to_env()},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        try:
            while True:
                try:
                    with urllib.request.urlopen(f"{base}/health", timeout=2):  # noqa: S310
                        break
                except (urllib.error.URLError, ConnectionError):
                    if process.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        output = log.read().decode(errors="replace")
                        pytest.fail(f"feast serve did not come up:\n{output[-3000:]}")
                    time.sleep(0.5)
            yield base
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


def check_online_over_http(base: str, want: list[RefRow]) -> None:
    """Every view's final row per user, read through the feature server, equals `want`'s."""
    final = _final_rows(want)
    for spec in VIEWS:
        users = sorted(u for v, u in final if v == spec.name)
        refs = [f"{spec.name}:{f.name}" for f in features_of(spec.name)]
        body = post_json(
            f"{base}/get-online-features", {"features": refs, "entities": {"user_id": users}}
        )
        names = body["metadata"]["feature_names"]
        columns = dict(zip(names, (r["values"] for r in body["results"]), strict=True))
        for i, user in enumerate(users):
            for f in features_of(spec.name):
                expected = final[(spec.name, user)].values[f.name]
                got = columns[f.name][i]
                assert same(got, expected), (spec.name, user, f.name, got, expected)
