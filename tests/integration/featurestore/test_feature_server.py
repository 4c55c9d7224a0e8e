"""Feast's own REST feature server (`feast serve`) on loopback, against this repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from stream.catalog import features_of
from stream.settings import Settings
from tests.containers import free_port


def _post(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(  # noqa: S310 - loopback URL built by the test
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.loads(response.read() or b"null")


@pytest.fixture(scope="module")
def server(feast_settings: Settings) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stream",
            "feast",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env={**os.environ, **feast_settings.to_env()},
        stdout=subprocess.PIPE,
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
                    output = process.stdout.read().decode() if process.stdout else ""
                    pytest.fail(f"feast serve did not come up:\n{output[-3000:]}")
                time.sleep(0.5)
        yield base
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)


def test_push_then_read_a_feature_service_with_request_data(
    server: str, user_ids: Callable[[int], list[str]]
) -> None:
    (user,) = user_ids(1)
    now = datetime.now(UTC).isoformat()
    columns: dict[str, list[Any]] = {"user_id": [user], "event_timestamp": [now]}
    for i, spec in enumerate(features_of("user_activity_features")):
        columns[spec.name] = ["walking"] if spec.dtype == "string" else [i + 1]
    _post(f"{server}/push", {"push_source_name": "user_activity_push", "df": columns})

    plain = _post(
        f"{server}/get-online-features",
        {"features": ["user_activity_features:avg_energy_7d"], "entities": {"user_id": [user]}},
    )
    names = plain["metadata"]["feature_names"]
    values = dict(zip(names, (r["values"][0] for r in plain["results"]), strict=True))
    assert values["avg_energy_7d"] == columns["avg_energy_7d"][0]

    served = _post(
        f"{server}/get-online-features",
        {
            "feature_service": "energy_prediction_v1",
            "entities": {
                "user_id": [user],
                "current_hour": [14],
                "day_of_week": [3],
                "is_weekend": [0],
            },
        },
    )
    names = served["metadata"]["feature_names"]
    values = dict(zip(names, (r["values"][0] for r in served["results"]), strict=True))
    assert 1 <= values["predicted_energy"] <= 10
    assert 0 <= values["energy_confidence"] <= 1
    assert values["most_common_activity_24h"] == "walking"
