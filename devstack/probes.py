"""Ask each service a real question; used by `make up`, `make status` and the test fixtures."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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
    client = redis.Redis.from_url(
        settings.redis_url.get_secret_value(), socket_connect_timeout=3, socket_timeout=3
    )
    try:
        client.ping()
        info = client.info("server")
        version = info.get("redis_version", "?") if isinstance(info, dict) else "?"
        return ProbeResult(True, f"Redis {version}")
    except redis.RedisError as exc:
        return ProbeResult(False, f"cannot ping: {exc}")
    finally:
        client.close()


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
