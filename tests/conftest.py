"""Session fixtures handing every test real Kafka, PostgreSQL and Redis endpoints.

With a reachable Docker engine the servers are testcontainers; otherwise they are the local stack
that `make up` started. If neither answers, the run stops at once and says to run `make up`.
Each test gets its own topics, Postgres schema and Redis key prefix; the session its own database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from kafka.admin import KafkaAdminClient, NewTopic
from psycopg import sql

from devstack.compose import docker_available
from devstack.probes import PROBES
from stream.redis_client import OnlineRedis, connect, where
from stream.settings import Settings, get_settings
from tests.databases import own_database


@dataclass(frozen=True)
class Stack:
    """Where the servers of this test session are, and what kind they are."""

    backend: str
    settings: Settings


def _backend() -> str:
    return "containers" if docker_available() else "local stack"


def pytest_report_header(config: pytest.Config) -> str:
    return f"aurora stack: {config.stash.setdefault(_BACKEND, _backend())}"


_BACKEND = pytest.StashKey[str]()
# What the fault tests measured (tests/integration/worker/test_faults.py), printed in the summary.
FAULT_REPORT = pytest.StashKey[list[dict[str, Any]]]()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    rows = config.stash.get(FAULT_REPORT, [])
    if not rows:
        return
    terminalreporter.section("fault report")
    for row in rows:
        terminalreporter.write_line(
            f"{row['fault']}: {row['events_in']} events in, {row['archived']} archived, "
            f"{row['rows']} rows, {row['retried']} writes retried, caught up "
            f"{row['recovered_s']} s after recovery"
            + (f"; consumer: {row['consumer']}" if "consumer" in row else "")
        )


@pytest.fixture(scope="session")
def stack(pytestconfig: pytest.Config) -> Iterator[Stack]:
    backend = pytestconfig.stash.setdefault(_BACKEND, _backend())
    with ExitStack() as cleanup:
        if backend == "containers":
            from tests.containers import containers

            os.environ.update(cleanup.enter_context(containers()))
            get_settings.cache_clear()
        base = get_settings()
        down = {name: r for name, p in PROBES.items() if not (r := p(base)).ok}
        if down:
            details = "\n".join(f"  {name}: {r.detail}" for name, r in down.items())
            pytest.exit(
                f"the integration tests need real Kafka, PostgreSQL and Redis, and these do not "
                f"answer:\n{details}\nRun `make up` (or `make test`, which runs it) first.",
                returncode=3,
            )
        settings = cleanup.enter_context(own_database(base, "aurora_test"))
        print(
            f"\naurora stack: {backend}: kafka {settings.kafka_bootstrap_servers}, "
            f"postgres {settings.postgres.host}:{settings.postgres.port}/"
            f"{settings.postgres.database}, redis {where(settings)}"
        )
        yield Stack(backend, settings)


@pytest.fixture(scope="session")
def settings(stack: Stack) -> Settings:
    return stack.settings


@pytest.fixture
def unique() -> str:
    """A name no other test uses: a safe identifier for topics, schemas and key prefixes."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def kafka_topic(settings: Settings, unique: str) -> Iterator[Callable[..., str]]:
    """Factory: create a uniquely named topic; every topic made is deleted after the test."""
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    made: list[str] = []

    def make(suffix: str = "events", partitions: int = 4) -> str:
        name = f"{unique}.{suffix}"
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        made.append(name)
        return name

    yield make
    if made:
        admin.delete_topics(made)
    admin.close()


@pytest.fixture
def pg_conn(settings: Settings) -> Iterator[psycopg.Connection[Any]]:
    conn = psycopg.connect(settings.postgres_conninfo())
    yield conn
    conn.close()


@pytest.fixture
def pg_schema(pg_conn: psycopg.Connection[Any], unique: str) -> Iterator[str]:
    """A schema of this test's own, dropped with everything in it afterwards."""
    with pg_conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(unique)))
    pg_conn.commit()
    yield unique
    pg_conn.rollback()
    with pg_conn.cursor() as cur:
        cur.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(unique)))
    pg_conn.commit()


@pytest.fixture
def redis_client(settings: Settings) -> Iterator[OnlineRedis]:
    client = connect(settings)
    yield client
    client.close()


@pytest.fixture
def redis_prefix(redis_client: OnlineRedis, unique: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"{unique}:"
    yield prefix
    keys = list(redis_client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        redis_client.delete(*keys)
