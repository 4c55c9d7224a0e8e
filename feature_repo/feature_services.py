"""The four feature services models and apps read through, exactly as the catalog lists them."""

from feast import FeatureService
from features import (
    exercise_features,
    integration_features,
    sleep_features,
    social_features,
    user_activity_features,
)
from on_demand import (
    energy_prediction_features,
    mood_prediction_features,
    wellness_composite_features,
)

energy_prediction_v1 = FeatureService(
    name="energy_prediction_v1",
    features=[
        user_activity_features,
        sleep_features,
        exercise_features,
        energy_prediction_features,
    ],
    description="Energy level predictions.",
    owner="ml-platform@aurora.life",
)

mood_prediction_v1 = FeatureService(
    name="mood_prediction_v1",
    features=[
        sleep_features,
        social_features,
        exercise_features,
        user_activity_features,
        mood_prediction_features,
    ],
    description="Mood predictions.",
    owner="ml-platform@aurora.life",
)

wellness_dashboard_v1 = FeatureService(
    name="wellness_dashboard_v1",
    features=[
        user_activity_features,
        sleep_features,
        exercise_features,
        social_features,
        integration_features,
        wellness_composite_features,
    ],
    description="Everything the user's wellness dashboard shows.",
    owner="ml-platform@aurora.life",
)

ml_training_v1 = FeatureService(
    name="ml_training_v1",
    features=[
        user_activity_features,
        sleep_features,
        exercise_features,
        social_features,
        integration_features,
    ],
    description="All base features for model training; no on-demand features.",
    owner="ml-platform@aurora.life",
)
