"""feature_repo/materialize.py: offline snapshots into Redis, the sample printout, clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from feast import FeatureStore
from feast.data_source import PushMode

from stream.settings import Settings
from tests.integration.helpers import snapshot_rows


def _materialize(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    script = settings.feast_repo_path / "materialize.py"
    return subprocess.run(
        [sys.executable, str(script), *args],
        env={**os.environ, **settings.to_env()},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_full_moves_offline_rows_online_and_example_shows_them(
    feature_store: FeatureStore, feast_settings: Settings, user_ids: Callable[[int], list[str]]
) -> None:
    (user,) = user_ids(1)
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    rows = snapshot_rows("sleep_features", [user], at, base=6)
    feature_store.push("sleep_push", rows, to=PushMode.OFFLINE)
    ref = "sleep_features:sleep_quality_score"
    before = feature_store.get_online_features(features=[ref], entity_rows=[{"user_id": user}])
    assert before.to_dict()["sleep_quality_score"] == [None]

    full = _materialize(feast_settings, "full")
    assert full.returncode == 0, full.stderr

    after = feature_store.get_online_features(features=[ref], entity_rows=[{"user_id": user}])
    assert after.to_dict()["sleep_quality_score"] == [rows["sleep_quality_score"][0]]
    example = _materialize(feast_settings, "example", "--user", user)
    assert example.returncode == 0, example.stderr
    assert "energy_prediction_v1" in example.stdout
    assert str(rows["sleep_quality_score"][0]) in example.stdout

    incremental = _materialize(feast_settings, "incremental")
    assert incremental.returncode == 0, incremental.stderr


def test_a_service_that_is_down_gets_a_clear_error(feast_settings: Settings) -> None:
    no_redis = feast_settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    result = _materialize(no_redis, "example")
    assert result.returncode == 2
    assert "Redis at 127.0.0.1:1 did not answer" in result.stderr
    assert "Traceback" not in result.stderr
