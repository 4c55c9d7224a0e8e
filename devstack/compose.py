"""The same stack through Docker Compose, for machines where a Docker engine answers."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from devstack.errors import StackError
from stream.settings import Settings

COMPOSE_FILE = Path(__file__).resolve().parent.parent / "docker-compose.kafka.yml"
SERVICES = ("kafka", "postgres", "redis")


def docker_available() -> bool:
    """True when a Docker engine answers, not merely when the client is installed."""
    if not shutil.which("docker"):
        return False
    try:
        probe = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            timeout=15,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def compose_env(settings: Settings) -> dict[str, str]:
    """The variables docker-compose.kafka.yml reads, derived from the settings."""
    pg = settings.postgres
    _, kafka_port = settings.kafka_servers[0]
    return {
        "AURORA_KAFKA_PORT": str(kafka_port),
        "AURORA_PG_PORT": str(pg.port),
        "AURORA_PG_DATABASE": pg.database,
        "AURORA_PG_USER": pg.user,
        "AURORA_PG_PASSWORD": pg.password,
        "AURORA_PG_AUTH_METHOD": "scram-sha-256" if pg.password else "trust",
        "AURORA_REDIS_PORT": str(settings.redis.port),
    }


def compose(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    argv = ["docker", "compose", "-f", str(COMPOSE_FILE), *args]
    result = subprocess.run(
        argv,
        env={**os.environ, **compose_env(settings)},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise StackError(f"{' '.join(argv)} failed:\n{result.stdout}{result.stderr}")
    return result


def up(settings: Settings) -> None:
    compose(settings, "up", "-d", "--wait", *SERVICES)


def down(settings: Settings) -> None:
    compose(settings, "down")


def status(settings: Settings) -> str:
    return compose(settings, "ps").stdout
