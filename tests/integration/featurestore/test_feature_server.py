"""Feast's own REST feature server (`feast serve`) on loopback, against this repository, on
the single Redis and on the Redis Cluster."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from stream.catalog import features_of
from stream.settings import Settings
from tests.integration.helpers import feature_server, post_json


@pytest.fixture(scope="module", params=["redis", "redis_cluster"])
def server(request: pytest.FixtureRequest, feast_settings: Settings) -> Iterator[str]:
    """The server on each online store: the single Redis, and the 3-master cluster."""
    on_cluster = request.param == "redis_cluster"
    settings = request.getfixturevalue("cluster_settings") if on_cluster else feast_settings
    with feature_server(settings) as base:
        yield base


def test_push_then_read_a_feature_service_with_request_data(
    server: str, user_ids: Callable[[int], list[str]]
) -> None:
    (user,) = user_ids(1)
    now = datetime.now(UTC).isoformat()
    columns: dict[str, list[Any]] = {"user_id": [user], "event_timestamp": [now]}
    for i, spec in enumerate(features_of("user_activity_features")):
        columns[spec.name] = ["walking"] if spec.dtype == "string" else [i + 1]
    post_json(f"{server}/push", {"push_source_name": "user_activity_push", "df": columns})

    plain = post_json(
        f"{server}/get-online-features",
        {"features": ["user_activity_features:avg_energy_7d"], "entities": {"user_id": [user]}},
    )
    names = plain["metadata"]["feature_names"]
    values = dict(zip(names, (r["values"][0] for r in plain["results"]), strict=True))
    assert values["avg_energy_7d"] == columns["avg_energy_7d"][0]

    served = post_json(
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
