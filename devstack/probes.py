"""Ask each service a real question; used by `make up`, `make status` and the test fixtures."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import redis
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from devstack.errors import ServiceNotReadyError
from stream.settings import Settings


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str


def probe_kafka(settings: Settings) -> ProbeResult:
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            request_timeout_ms=3000,
        )
    except (KafkaError, OSError, ValueError) as exc:
        return ProbeResult(False, f"no broker at {settings.kafka_bootstrap_servers}: {exc!r}")
    try:
        cluster = admin.describe_cluster()
        return ProbeResult(True, f"{len(cluster['brokers'])} broker(s), {cluster['cluster_id']}")
    except (KafkaError, OSError) as exc:
        return ProbeResult(False, f"broker did not describe the cluster: {exc!r}")
    finally:
        admin.close()


def probe_postgres(settings: Settings) -> ProbeResult:
    try:
        with psycopg.connect(settings.postgres_conninfo(), connect_timeout=3) as conn:
            with conn.cursor() as cur:
                cur.execute("SHOW server_version")
                row = cur.fetchone()
            conn.rollback()
        conn.close()
        return ProbeResult(True, f"PostgreSQL {row[0] if row else '?'}")
    except psycopg.Error as exc:
        return ProbeResult(False, f"cannot connect: {str(exc).strip()}")


def probe_redis(settings: Settings) -> ProbeResult:
    """The settings' Redis: one node, or every master of a cluster."""
    from redis.exceptions import RedisClusterException

    from stream.redis_client import connect, where

    try:
        client = connect(settings, socket_connect_timeout=3, socket_timeout=3)
    except (redis.RedisError, RedisClusterException) as exc:
        return ProbeResult(False, f"cannot reach {where(settings)}: {exc}")
    try:
        client.ping()
        info: dict[str, Any] = client.info("server")  # type: ignore[assignment]  # not async
        if settings.redis.cluster:  # a dict per node
            versions = {v.get("redis_version", "?") for v in info.values() if isinstance(v, dict)}
            return ProbeResult(True, f"Redis {', '.join(sorted(versions))}, {len(info)} nodes")
        version = info.get("redis_version", "?")
        return ProbeResult(True, f"Redis {version}")
    except (redis.RedisError, RedisClusterException) as exc:
        return ProbeResult(False, f"cannot ping: {exc}")
    finally:
        client.close()


def _cluster_node(settings: Settings, port: int) -> redis.Redis:
    """A plain client on one node of the local stack's cluster, with short timeouts."""
    password = settings.redis.password
    return redis.Redis(
        host="127.0.0.1",
        port=port,
        password=password or None,
        socket_connect_timeout=3,
        socket_timeout=3,
    )


def probe_redis_node(settings: Settings, port: int) -> ProbeResult:
    """One node of the local stack's cluster, on loopback: does it answer at all."""
    client = _cluster_node(settings, port)
    try:
        client.ping()
        return ProbeResult(True, f"node {port}")
    except redis.RedisError as exc:
        return ProbeResult(False, f"node {port} cannot ping: {exc}")
    finally:
        client.close()


def probe_redis_cluster(settings: Settings) -> ProbeResult:
    """The local stack's cluster: every node answers, says cluster_state:ok and sees every
    slot assigned to the three masters."""
    states = []
    for port in settings.stack_redis_cluster_ports:
        client = _cluster_node(settings, port)
        try:
            info: dict[str, str] = client.cluster("INFO")  # type: ignore[assignment]  # not async
        except redis.RedisError as exc:
            return ProbeResult(False, f"node {port}: {exc}")
        finally:
            client.close()
        state = (info.get("cluster_state"), info.get("cluster_slots_assigned"))
        masters = info.get("cluster_size")
        if state != ("ok", "16384") or masters != "3":
            return ProbeResult(
                False, f"node {port}: state {state[0]}, {state[1]} slots, {masters} masters"
            )
        states.append(port)
    ports = ",".join(str(p) for p in states)
    return ProbeResult(True, f"3 masters on 127.0.0.1:{ports}, 16384 slots, state ok")


PROBES: dict[str, Callable[[Settings], ProbeResult]] = {
    "kafka": probe_kafka,
    "postgres": probe_postgres,
    "redis": probe_redis,
}


def wait_ready(
    service: str,
    probe: Callable[[], ProbeResult],
    timeout_s: float,
    log: Path | None,
    alive: Callable[[], bool] = lambda: True,
) -> ProbeResult:
    """Probe until the service answers; fail early if its process died, else at the timeout."""
    deadline = time.monotonic() + timeout_s
    result = probe()
    while not result.ok:
        if not alive():
            raise ServiceNotReadyError(service, timeout_s, "its process exited", log)
        if time.monotonic() > deadline:
            raise ServiceNotReadyError(service, timeout_s, result.detail, log)
        time.sleep(0.5)
        result = probe()
    return result
