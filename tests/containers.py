"""Kafka, PostgreSQL and Redis in throwaway containers, where a Docker engine answers."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import yaml

from devstack.probes import probe_kafka, wait_ready
from stream.settings import Settings

COMPOSE_FILE = Path(__file__).resolve().parent.parent / "docker-compose.kafka.yml"
_DEFAULTED = re.compile(r"\$\{AURORA_KAFKA_PORT:-\d+\}")


def compose_service(name: str) -> dict[str, Any]:
    services: dict[str, dict[str, Any]] = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    return services[name]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def containers() -> Iterator[dict[str, str]]:
    """Start the three containers; yield the AURORA_* variables that point at them."""
    from testcontainers.community.postgres import PostgresContainer
    from testcontainers.community.redis import RedisContainer
    from testcontainers.core.container import DockerContainer

    kafka_spec = compose_service("kafka")
    # The broker must advertise the port the host sees, so that port is chosen before it starts.
    port = free_port()
    kafka = DockerContainer(kafka_spec["image"]).with_bind_ports(port, port)
    for key, value in kafka_spec["environment"].items():
        kafka = kafka.with_env(key, _DEFAULTED.sub(str(port), str(value)))
    kafka = kafka.with_env(
        "KAFKA_ADVERTISED_LISTENERS", f"PLAINTEXT://127.0.0.1:{port},INTERNAL://localhost:29092"
    )
    postgres = PostgresContainer(
        compose_service("postgres")["image"], username="aurora", password="aurora", dbname="aurora"
    )
    redis = RedisContainer(compose_service("redis")["image"])
    with ExitStack() as stack:
        stack.enter_context(kafka)
        stack.enter_context(postgres)
        stack.enter_context(redis)
        env = {
            "AURORA_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}",
            "AURORA_POSTGRES_DSN": (
                f"postgresql://aurora:aurora@{postgres.get_container_host_ip()}:"
                f"{postgres.get_exposed_port(5432)}/aurora"
            ),
            "AURORA_POSTGRES_SSLMODE": "disable",
            "AURORA_REDIS_URL": (
                f"redis://{redis.get_container_host_ip()}:{redis.get_exposed_port(6379)}/0"
            ),
        }
        settings = Settings.model_validate(
            {k.removeprefix("AURORA_").lower(): v for k, v in env.items()}
        )
        wait_ready("kafka", lambda: probe_kafka(settings), 120, None)
        yield env
