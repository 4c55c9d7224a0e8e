"""A Feast project of this session's own, applied once: `import feast` and `apply` are slow."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from feast import FeatureStore
from kafka.admin import KafkaAdminClient

from stream.featurestore.env import open_store
from stream.ops.topics import ensure_topics
from stream.settings import Settings
from tests.integration.helpers import Worker, run_stream


@pytest.fixture(scope="session")
def feast_settings(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    registry = tmp_path_factory.mktemp("feast") / "registry.db"
    applied = settings.model_copy(
        update={
            "feast_project": f"aurora_test_{uuid.uuid4().hex[:8]}",
            "feast_registry_path": str(registry),
        }
    )
    result = run_stream(applied, "feast", "apply")
    assert result.returncode == 0, f"feast apply failed:\n{result.stdout}\n{result.stderr}"
    return applied


@pytest.fixture(scope="session")
def feature_store(feast_settings: Settings) -> Iterator[FeatureStore]:
    store = open_store(feast_settings)
    yield store
    store.teardown()  # type: ignore[no-untyped-call]  # Feast leaves it unannotated


@pytest.fixture(scope="session")
def cluster_settings(feast_settings: Settings) -> Settings:
    """The session's Feast project with its online store on the local stack's 3-master Redis
    Cluster, which is started here unless it runs (`make down` stops it with the stack).

    The registry is the session's: which Redis holds the rows is the online store's config,
    not the registry's. The cluster runs as local processes in either backend."""
    from devstack.redis_cluster import RedisClusterStack

    on_cluster = feast_settings.on_stack_redis_cluster()
    RedisClusterStack(on_cluster).up()
    return on_cluster


@pytest.fixture(scope="session")
def cluster_store(cluster_settings: Settings) -> Iterator[FeatureStore]:
    store = open_store(cluster_settings)
    yield store
    store.teardown()  # type: ignore[no-untyped-call]  # Feast leaves it unannotated


@pytest.fixture
def user_ids(unique: str) -> Callable[[int], list[str]]:
    """Factory: user ids no other test uses, so rows in the shared tables never collide."""
    return lambda n: [f"{unique}-user-{i}" for i in range(n)]


@pytest.fixture
def stream_settings(feast_settings: Settings, unique: str, tmp_path: Path) -> Iterator[Settings]:
    """This test's own topics, consumer group, changelog and local stores; topics deleted
    afterwards."""
    mine = feast_settings.model_copy(
        update={
            "topic_prefix": unique,
            "worker_app_id": f"{unique}-worker",
            "worker_sweep_interval_s": 3600.0,
            "worker_state_dir": tmp_path / "state",
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
