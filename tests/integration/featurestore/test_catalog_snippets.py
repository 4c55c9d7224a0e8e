"""The usage snippets of the seed catalog run against this repository.

Each snippet is the catalog's text with the changes the README lists: the repo path is this
repository's; `PushMode` comes from `feast.data_source` (Feast 0.67 no longer exports it from
`feast`); a feature service goes in as `features=store.get_feature_service(name)` (0.67 has no
`feature_service=` keyword); and a push carries every field of its view, because Feast 0.67
refuses a partial row (the catalog's example sends three of eleven) with a KeyError. The first two
tests show Feast refusing the catalog's own forms, so the README's list stays true. Sample
users get this test's ids so runs never share rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from feast import FeatureStore

from stream.settings import Settings

PUSH = """
from feast import FeatureStore
from feast.data_source import PushMode
import pandas as pd
from datetime import datetime

store = FeatureStore(repo_path=REPO)

# New activity data
df = pd.DataFrame({
    "user_id": [USER],
    "event_timestamp": [datetime.utcnow()],
    "activity_count_24h": [5],
    "total_minutes_24h": [180.0],
    "avg_energy_7d": [7.5],
})
# Feast 0.67: a push row must carry every field of the view; the rest are null here.
for field in store.get_feature_view("user_activity_features").features:
    if field.name not in df:
        df[field.name] = [None]

# Push to online store
store.push("user_activity_push", df, to=PushMode.ONLINE)
"""

ONLINE = """
from feast import FeatureStore

store = FeatureStore(repo_path=REPO)

# Get online features for prediction
features = store.get_online_features(
    features=[
        "user_activity_features:avg_energy_7d",
        "sleep_features:sleep_quality_score",
        "exercise_features:exercise_consistency_score",
    ],
    entity_rows=[{"user_id": USER}],
).to_dict()
"""

SERVICE = """
features = store.get_online_features(
    features=store.get_feature_service("energy_prediction_v1"),
    entity_rows=[
        {
            "user_id": USER,
            "current_hour": 14,  # 2 PM
            "day_of_week": 3,    # Thursday
            "is_weekend": 0,
        }
    ],
).to_dict()

predicted_energy = features["predicted_energy"][0]
confidence = features["energy_confidence"][0]
"""

HISTORICAL = """
import pandas as pd
from datetime import datetime, timedelta

# Entity dataframe (users + timestamps)
entity_df = pd.DataFrame({
    "user_id": [USER, "user-2", "user-3"] * 30,
    "event_timestamp": [
        datetime.utcnow() - timedelta(days=i)
        for i in range(30)
        for _ in range(3)
    ],
})

# Get features
training_df = store.get_historical_features(
    entity_df=entity_df,
    features=[
        "user_activity_features:avg_energy_7d",
        "sleep_features:sleep_quality_score",
        "exercise_features:exercise_consistency_score",
    ],
).to_df()
"""


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_feast_refuses_the_catalogs_partial_push_row(
    feature_store: FeatureStore, feast_settings: Settings, user_ids: Callable[[int], list[str]]
) -> None:
    (user,) = user_ids(1)
    scope: dict[str, Any] = {"REPO": str(feast_settings.feast_repo_path), "USER": user}
    as_in_catalog = PUSH.replace(
        "for field in store.get_feature_view", "for field in [] and store.get_feature_view"
    )
    with pytest.raises(KeyError, match="not in index"):
        exec(as_in_catalog, scope)  # noqa: S102


def test_feast_refuses_the_catalogs_feature_service_keyword(feature_store: FeatureStore) -> None:
    scope: dict[str, Any] = {"store": feature_store, "USER": "user-123"}
    as_in_catalog = SERVICE.replace(
        'features=store.get_feature_service("energy_prediction_v1")',
        'feature_service="energy_prediction_v1"',
    )
    with pytest.raises(TypeError, match="feature_service"):
        exec(as_in_catalog, scope)  # noqa: S102


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_catalog_snippets_run_in_order(
    feature_store: FeatureStore, feast_settings: Settings, user_ids: Callable[[int], list[str]]
) -> None:
    (user,) = user_ids(1)
    scope: dict[str, Any] = {"REPO": str(feast_settings.feast_repo_path), "USER": user}
    exec(PUSH, scope)  # noqa: S102 - the catalog's own snippets, verbatim
    exec(ONLINE, scope)  # noqa: S102
    assert scope["features"]["avg_energy_7d"] == [7.5]
    exec(SERVICE, scope)  # noqa: S102
    assert 1 <= scope["predicted_energy"] <= 10
    assert 0 < scope["confidence"] <= 1
    exec(HISTORICAL, scope)  # noqa: S102
    assert len(scope["training_df"]) == 90
