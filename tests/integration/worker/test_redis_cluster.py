"""The pipeline on the local stack's 3-master Redis Cluster, moved there by the one setting.

A worker whose AURORA_REDIS_URL names the cluster's nodes writes every user's rows there, spread
over all three masters and none in the single Redis; Feast in process, `feast serve` over HTTP
and `python -m stream status` read them back equal to the independent reference. A master
restarted mid-stream loses nothing the worker acknowledged: what it held before is there when
it is back, and once the worker has retried its writes every row equals the reference.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from feast import FeatureStore

from devstack.redis_cluster import RedisClusterStack
from stream.ops import status
from stream.redis_client import connect
from stream.settings import Settings
from stream.sinks.redis_rows import timestamp_nanos
from tests.conftest import FAULT_REPORT
from tests.integration.helpers import (
    Worker,
    archived,
    check_online_over_http,
    distinct_valid,
    expected_rows,
    feature_server,
    produce,
    run_stream,
    settle,
    traffic,
    verify_all,
    wait_for,
)
from tests.reference import RefRow

pytestmark = pytest.mark.integration

DOWN_S = 6.0  # longer than the cluster's node timeout (5 s): the others mark the master failed


def keys_per_master(settings: Settings, unique: str) -> dict[int, list[bytes]]:
    """This test's keys (their entity key holds the user id) on each master, by port."""
    found: dict[int, list[bytes]] = {}
    for port in settings.stack_redis_cluster_ports:
        node = redis.Redis(host="127.0.0.1", port=port, password=settings.redis.password or None)
        try:
            found[port] = list(node.scan_iter(match=f"*{unique}-*".encode(), count=1000))
        finally:
            node.close()
    return found


def ts_fields(client: Any, keys: list[bytes]) -> dict[bytes, dict[bytes, bytes]]:
    """Each key's `_ts:<view>` fields: the event time of the row each view holds."""
    stored = {}
    for key in keys:
        fields = client.hgetall(key)
        stored[key] = {f: v for f, v in fields.items() if f.startswith(b"_ts:")}
    return stored


def once_serving(
    settings: Settings, port: int, keys: list[bytes]
) -> dict[bytes, dict[bytes, bytes]]:
    """`ts_fields` of `keys`, read from the node at `port` as soon as it serves them."""
    node = redis.Redis(host="127.0.0.1", port=port, password=settings.redis.password or None)
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                return ts_fields(node, keys)
            except redis.exceptions.ClusterDownError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        node.close()


def per_view_users(want: list[RefRow]) -> dict[str, int]:
    users: dict[str, set[str]] = {}
    for row in want:
        users.setdefault(row.view, set()).add(row.user_id)
    return {view: len(ids) for view, ids in users.items()}


def test_the_stream_on_the_cluster_equals_the_reference_everywhere_it_is_read(
    stream_settings: Settings,
    cluster_settings: Settings,
    cluster_store: FeatureStore,
    start_worker: Worker,
    pg_conn: psycopg.Connection[Any],
    unique: str,
    tmp_path: Path,
) -> None:
    on_cluster = stream_settings.on_stack_redis_cluster()
    assert on_cluster.redis.cluster and len(on_cluster.redis.nodes) == 3
    events = traffic(unique)
    start_worker(on_cluster)
    produce(on_cluster, events)
    verify_all(on_cluster, cluster_store, pg_conn, unique, events, tmp_path)

    # Every master holds some users; the single Redis none: the setting moved every write.
    per_master = keys_per_master(on_cluster, unique)
    assert all(per_master.values()), {port: len(keys) for port, keys in per_master.items()}
    single = connect(stream_settings)
    try:
        assert not list(single.scan_iter(match=f"*{unique}-*".encode(), count=1000))
    finally:
        single.close()

    want = expected_rows(events)
    with feature_server(on_cluster) as base:
        check_online_over_http(base, want)

    # status walks every master: at least this test's users per view (the session's other
    # cluster tests write to the same project), and healthy, since the traffic ends now.
    online = status.online(on_cluster)
    for view, users in per_view_users(want).items():
        assert online[view][0] >= users, (view, online[view], users)
    result = run_stream(on_cluster, "status")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_master_restarted_mid_stream_loses_nothing_the_worker_acknowledged(
    stream_settings: Settings,
    cluster_settings: Settings,
    cluster_store: FeatureStore,
    start_worker: Worker,
    pg_conn: psycopg.Connection[Any],
    request: pytest.FixtureRequest,
    unique: str,
    tmp_path: Path,
) -> None:
    on_cluster = stream_settings.on_stack_redis_cluster()
    events = traffic(unique, users=16, days=2)
    half = len(events) // 2
    worker = start_worker(on_cluster)
    produce(on_cluster, events[:half])
    # The first half acknowledged: archived, and every row online.
    first = distinct_valid(events[:half])
    wait_for(lambda: archived(pg_conn, unique) == first, 240, "the first half", tmp_path)
    settle(cluster_store, expected_rows(events[:half]))

    # The master holding most of this test's users goes down while the stream goes on.
    per_master = keys_per_master(on_cluster, unique)
    port = max(per_master, key=lambda p: len(per_master[p]))
    node = RedisClusterStack(on_cluster).node(port)
    client = connect(on_cluster)
    try:
        before = ts_fields(client, per_master[port])
        went_down = time.monotonic()
        assert node.down(), f"node {port} was not running"
        produce(on_cluster, events[half:])
        time.sleep(DOWN_S)
        node.up()
        back = time.monotonic()
        # Back with every row it had acknowledged, once it serves again (it answers
        # CLUSTERDOWN until it has rejoined): the same or a newer row per view.
        after = once_serving(on_cluster, port, list(before))
    finally:
        client.close()
    for key, views in before.items():
        for view, ts in views.items():
            assert view in after[key], (key, view)
            assert timestamp_nanos(after[key][view]) >= timestamp_nanos(ts), (key, view)

    distinct = distinct_valid(events)
    wait_for(lambda: archived(pg_conn, unique) == distinct, 300, "the archive", tmp_path)
    recovered_s = time.monotonic() - back
    verify_all(on_cluster, cluster_store, pg_conn, unique, events, tmp_path)
    assert worker.poll() is None, "the worker exited instead of waiting for the master"
    retried = sum(p.read_text().count("retrying in") for p in tmp_path.glob("worker-*.log"))
    assert retried, "the worker never met the master's absence: the test tested nothing"
    report: Callable[..., None] = request.config.stash.setdefault(FAULT_REPORT, []).append
    report(
        {
            "fault": f"redis cluster master :{port} restart ({back - went_down:.0f}s down)",
            "events_in": len(events),
            "archived": archived(pg_conn, unique),
            "rows": len(expected_rows(events)),
            "retried": retried,
            "recovered_s": round(recovered_s, 1),
        }
    )
