"""On-demand views: energy and mood predictions, and the wellness composite.

The formulas live in stream/core/ondemand.py (pure, unit-tested); these views only declare inputs
and outputs. The functions import it when they run because Feast serialises them by value. Output
fields carry no description of their own: Feast 0.67 compares declared fields with the ones it
infers from a trial run including the description, so a described output fails `feast apply`;
each view's description documents its outputs instead.
"""

from typing import Any

from feast import Field, RequestSource
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Float64, Int64, String
from features import (
    exercise_features,
    sleep_features,
    social_features,
    user_activity_features,
)

request_context = RequestSource(
    name="request_context",
    schema=[
        Field(name="current_hour", dtype=Int64, description="Local hour of the request, 0-23."),
        Field(
            name="day_of_week",
            dtype=Int64,
            description="0 = Monday ... 6 = Sunday; tells the weekend when is_weekend is missing.",
        ),
        Field(name="is_weekend", dtype=Int64, description="1 on Saturday and Sunday, else 0."),
    ],
    description="What the app knows at request time.",
    owner="ml-platform@aurora.life",
)


@on_demand_feature_view(
    sources=[user_activity_features, sleep_features, exercise_features, request_context],
    schema=[
        Field(name="predicted_energy", dtype=Float64),
        Field(name="energy_confidence", dtype=Float64),
    ],
    mode="python",
    description=(
        "predicted_energy (1-10): energy level expected now, from recent energy, sleep, "
        "exercise, the hour and the weekend (is_weekend, or day_of_week 5-6 when is_weekend "
        "is missing); energy_confidence (0-1): lower when inputs are missing."
    ),
    owner="ml-platform@aurora.life",
    tags={"team": "ml-platform"},
)
def energy_prediction_features(inputs: dict[str, Any]) -> dict[str, Any]:
    from stream.core.ondemand import energy_batch

    return energy_batch(inputs)


@on_demand_feature_view(
    sources=[sleep_features, social_features, exercise_features, user_activity_features],
    schema=[
        Field(name="predicted_mood", dtype=Float64),
        Field(name="mood_confidence", dtype=Float64),
    ],
    mode="python",
    description=(
        "predicted_mood (1-10): mood expected today, from recent mood, sleep, social life and "
        "exercise; mood_confidence (0-1): lower when inputs are missing."
    ),
    owner="ml-platform@aurora.life",
    tags={"team": "ml-platform"},
)
def mood_prediction_features(inputs: dict[str, Any]) -> dict[str, Any]:
    from stream.core.ondemand import mood_batch

    return mood_batch(inputs)


@on_demand_feature_view(
    sources=[sleep_features, exercise_features, user_activity_features],
    schema=[
        Field(name="wellness_score", dtype=Float64),
        Field(name="wellness_trend", dtype=String),
    ],
    mode="python",
    description=(
        "wellness_score (0-1) = 40% sleep + 30% exercise + 30% activity score; wellness_trend: "
        "excellent (>= 0.8), good (>= 0.6), fair (>= 0.4) or needs_improvement."
    ),
    owner="ml-platform@aurora.life",
    tags={"team": "ml-platform"},
)
def wellness_composite_features(inputs: dict[str, Any]) -> dict[str, Any]:
    from stream.core.ondemand import wellness_batch

    return wellness_batch(inputs)
