"""A Feast project of this session's own, applied once: `import feast` and `apply` are slow."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator

import pytest
from feast import FeatureStore

from stream.featurestore.env import open_store
from stream.settings import Settings


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


@pytest.fixture
def user_ids(unique: str) -> Callable[[int], list[str]]:
    """Factory: user ids no other test uses, so rows in the shared tables never collide."""
    return lambda n: [f"{unique}-user-{i}" for i in range(n)]
