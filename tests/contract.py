"""The seed catalog (aurora-feast-README.md) written out as data: the contract apps code against.

Kept apart from stream/catalog.py on purpose: the tests compare the two, so neither can drift.
"""

from __future__ import annotations

from datetime import timedelta

VIEWS: dict[str, tuple[timedelta, list[str]]] = {
    "user_activity_features": (
        timedelta(hours=24),
        [
            "activity_count_24h", "activity_count_7d", "activity_count_30d",
            "total_minutes_24h", "total_minutes_7d", "total_minutes_30d",
            "activity_diversity_7d", "activity_diversity_30d",
            "most_common_activity_24h", "avg_energy_7d", "avg_mood_7d",
        ],
    ),
    "sleep_features": (
        timedelta(hours=12),
        [
            "avg_sleep_duration_7d", "avg_sleep_duration_30d", "sleep_consistency_7d",
            "avg_bedtime_hour_7d", "sleep_sessions_7d", "sleep_debt_minutes",
            "sleep_quality_score", "avg_deep_sleep_minutes_7d", "avg_rem_sleep_minutes_7d",
        ],
    ),
    "exercise_features": (
        timedelta(hours=12),
        [
            "exercise_count_7d", "exercise_count_30d", "exercise_minutes_7d",
            "exercise_minutes_30d", "avg_exercise_duration_7d", "avg_energy_after_exercise_7d",
            "exercise_consistency_score", "workout_variety_score_7d", "high_intensity_count_7d",
        ],
    ),
    "social_features": (
        timedelta(hours=24),
        [
            "friend_count", "posts_7d", "comments_7d", "likes_received_7d", "likes_given_7d",
            "social_engagement_score", "avg_post_likes", "comment_rate_7d",
            "friend_interactions_7d",
        ],
    ),
    "integration_features": (
        timedelta(hours=6),
        [
            "active_integrations_count", "last_sync_hours_ago", "avg_heart_rate_7d",
            "avg_steps_7d", "avg_calories_7d", "data_completeness_score", "sync_reliability_score",
        ],
    ),
}  # fmt: skip

ON_DEMAND: dict[str, list[str]] = {
    "energy_prediction_features": ["predicted_energy", "energy_confidence"],
    "mood_prediction_features": ["predicted_mood", "mood_confidence"],
    "wellness_composite_features": ["wellness_score", "wellness_trend"],
}

SERVICES: dict[str, list[str]] = {
    "energy_prediction_v1": [
        "user_activity_features", "sleep_features", "exercise_features",
        "energy_prediction_features",
    ],
    "mood_prediction_v1": [
        "sleep_features", "social_features", "exercise_features", "user_activity_features",
        "mood_prediction_features",
    ],
    "wellness_dashboard_v1": [
        "user_activity_features", "sleep_features", "exercise_features", "social_features",
        "integration_features", "wellness_composite_features",
    ],
    "ml_training_v1": [
        "user_activity_features", "sleep_features", "exercise_features", "social_features",
        "integration_features",
    ],
}  # fmt: skip

WELLNESS_TRENDS = {"excellent", "good", "fair", "needs_improvement"}
