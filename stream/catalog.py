"""The feature catalog: every feature of the five views, its source events, window and definition.

This table is the single source of truth. The Feast feature views are built from it
(`stream.featurestore.definitions`), the streaming aggregation reads it, `docs/catalog.md` is
rendered from it, and the tests check each of those against it.

Windows are in event time. A window of length W at time T covers the events whose timestamp lies
in [tile_start(T) + TILE - W, T]: the tile holding T and the W/TILE - 1 whole tiles before it, with
TILE = 1 hour. So a "24h" feature at 14:25 counts events from 15:00 the day before up to 14:25.

T is the row's time: max(event time, previous row time + 1 microsecond) for rows an event causes,
the sweep time for rows the idle sweep writes (stream/core/state.py). With no qualifying event in
the window, counts and sums are 0, averages and ratios null, and scores as each definition says.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import Final, Literal

EventType = Literal["activity", "sleep", "exercise", "social", "sync"]
Dtype = Literal["int64", "float64", "string"]

EVENT_TYPES: Final[tuple[EventType, ...]] = ("activity", "sleep", "exercise", "social", "sync")

TILE: Final = timedelta(hours=1)


class Window(Enum):
    """How far back a feature looks from the row's time T."""

    H24 = "24h"
    D7 = "7d"
    D30 = "30d"
    ALL_TIME = "all time"
    NOW_RELATIVE = "relative to T"

    @property
    def duration(self) -> timedelta | None:
        return _WINDOW_DURATIONS.get(self)


_WINDOW_DURATIONS: Final = {
    Window.H24: timedelta(hours=24),
    Window.D7: timedelta(days=7),
    Window.D30: timedelta(days=30),
}

LONGEST_WINDOW: Final = timedelta(days=30)


class Aggregate(Enum):
    """How a feature folds the events of its window into one value."""

    COUNT = "count"
    SUM = "sum"
    MEAN = "mean"
    DISTINCT = "distinct count"
    MODE = "mode"
    STD = "standard deviation"
    RATIO = "ratio"
    LATEST = "latest"
    SCORE = "score"


@dataclass(frozen=True)
class FeatureSpec:
    """One feature: `name` is the Feast field name in the seed catalog."""

    name: str
    view: str
    events: tuple[EventType, ...]
    window: Window
    aggregate: Aggregate
    column: str | None
    dtype: Dtype
    definition: str
    unit: str = ""
    # COUNT of the events whose categorical `column` has this value (posts_7d: action = post).
    value: str | None = None


@dataclass(frozen=True)
class ViewSpec:
    """A feature view: one Feast view, one push source, one Postgres snapshot table."""

    name: str
    ttl: timedelta
    push_source: str
    table: str
    description: str
    events: tuple[EventType, ...]


VIEWS: Final[tuple[ViewSpec, ...]] = (
    ViewSpec(
        "user_activity_features",
        timedelta(hours=24),
        "user_activity_push",
        "user_activity_features",
        "Logged daily activities: volume, variety, energy and mood.",
        ("activity",),
    ),
    ViewSpec(
        "sleep_features",
        timedelta(hours=12),
        "sleep_push",
        "sleep_features",
        "Sleep sessions: duration, timing, regularity, stages and quality.",
        ("sleep",),
    ),
    ViewSpec(
        "exercise_features",
        timedelta(hours=12),
        "exercise_push",
        "exercise_features",
        "Workouts: volume, regularity, variety and intensity.",
        ("exercise",),
    ),
    ViewSpec(
        "social_features",
        timedelta(hours=24),
        "social_push",
        "social_features",
        "Friends, posts, comments and likes in the app's community.",
        ("social",),
    ),
    ViewSpec(
        "integration_features",
        timedelta(hours=6),
        "integration_push",
        "integration_features",
        "Wearable and health-app syncs: coverage, freshness, reliability and vitals.",
        ("sync",),
    ),
)

_A, _S, _E, _SO, _SY = (
    "user_activity_features",
    "sleep_features",
    "exercise_features",
    "social_features",
    "integration_features",
)
H24, D7, D30, ALL, NOW = (
    Window.H24,
    Window.D7,
    Window.D30,
    Window.ALL_TIME,
    Window.NOW_RELATIVE,
)
C = Aggregate

# Targets behind the scores, named once so the formulas and the docs agree.
SLEEP_TARGET_MINUTES: Final = 480.0
BEDTIME_STD_FOR_ZERO_CONSISTENCY_H: Final = 2.0
EXERCISE_TARGET_ACTIVE_DAYS_30D: Final = 30 * 3 / 7
EXERCISE_TYPES_COUNT: Final = 8
SOCIAL_ENGAGEMENT_SCALE: Final = 30.0
SYNC_TARGET_DAYS_7D: Final = 7

FEATURES: Final[tuple[FeatureSpec, ...]] = (
    # --- user_activity_features -------------------------------------------------------------
    FeatureSpec("activity_count_24h", _A, ("activity",), H24, C.COUNT, None, "int64",
                "Number of activity events in the window."),
    FeatureSpec("activity_count_7d", _A, ("activity",), D7, C.COUNT, None, "int64",
                "Number of activity events in the window."),
    FeatureSpec("activity_count_30d", _A, ("activity",), D30, C.COUNT, None, "int64",
                "Number of activity events in the window."),
    FeatureSpec("total_minutes_24h", _A, ("activity",), H24, C.SUM, "duration_minutes", "float64",
                "Sum of duration_minutes over the window's activities.", "minutes"),
    FeatureSpec("total_minutes_7d", _A, ("activity",), D7, C.SUM, "duration_minutes", "float64",
                "Sum of duration_minutes over the window's activities.", "minutes"),
    FeatureSpec("total_minutes_30d", _A, ("activity",), D30, C.SUM, "duration_minutes", "float64",
                "Sum of duration_minutes over the window's activities.", "minutes"),
    FeatureSpec("activity_diversity_7d", _A, ("activity",), D7, C.DISTINCT, "activity_type",
                "int64", "Number of distinct activity_type values in the window."),
    FeatureSpec("activity_diversity_30d", _A, ("activity",), D30, C.DISTINCT, "activity_type",
                "int64", "Number of distinct activity_type values in the window."),
    FeatureSpec("most_common_activity_24h", _A, ("activity",), H24, C.MODE, "activity_type",
                "string", "The activity_type logged most often in the window; ties go to the "
                "alphabetically first type; null when the window is empty."),
    FeatureSpec("avg_energy_7d", _A, ("activity",), D7, C.MEAN, "energy_level", "float64",
                "Mean of energy_level (1-10) over the window's activities.", "1-10"),
    FeatureSpec("avg_mood_7d", _A, ("activity",), D7, C.MEAN, "mood", "float64",
                "Mean of mood (1-10) over the window's activities.", "1-10"),
    # --- sleep_features ---------------------------------------------------------------------
    FeatureSpec("avg_sleep_duration_7d", _S, ("sleep",), D7, C.MEAN, "duration_minutes",
                "float64", "Mean duration_minutes of the window's sleep sessions.", "minutes"),
    FeatureSpec("avg_sleep_duration_30d", _S, ("sleep",), D30, C.MEAN, "duration_minutes",
                "float64", "Mean duration_minutes of the window's sleep sessions.", "minutes"),
    FeatureSpec("sleep_consistency_7d", _S, ("sleep",), D7, C.SCORE, "bedtime_hours_from_noon",
                "float64", "Regularity of bedtime: max(0, 1 - std / 2h), where std is the "
                "population standard deviation of each session's local bedtime measured in "
                "hours after noon (so 23:30 and 00:30 are one hour apart). 1 = same bedtime "
                "every night; 0 = a spread of two hours or more. Sleep researchers treat "
                "bedtime variability as a risk in itself, independent of duration.", "0-1"),
    FeatureSpec("avg_bedtime_hour_7d", _S, ("sleep",), D7, C.MEAN, "bedtime_hours_from_noon",
                "float64", "Mean local bedtime as a clock hour in [0, 24): the mean of the "
                "hours-after-noon values plus 12, modulo 24 (so 23:00 and 01:00 average to "
                "00:00, not 12:00).", "hour"),
    FeatureSpec("sleep_sessions_7d", _S, ("sleep",), D7, C.COUNT, None, "int64",
                "Number of sleep sessions (naps included) in the window."),
    FeatureSpec("sleep_debt_minutes", _S, ("sleep",), D7, C.SCORE, "duration_minutes",
                "float64", "Minutes short of 8 hours per logged session over the last 7 days: "
                "max(0, 480 x sessions - total minutes); null without sessions. Nights not "
                "logged add no debt: a missing log is not a missing night.", "minutes"),
    FeatureSpec("sleep_quality_score", _S, ("sleep",), D7, C.MEAN, "session_quality",
                "float64", "Mean over the window's sessions of 0.5 x min(1, duration / 480) + "
                "0.25 x efficiency + 0.25 x min(1, (deep + rem) / (0.45 x duration)), where "
                "efficiency = duration / (duration + awake_minutes). Duration, continuity and "
                "restorative stages are the three pillars consumer sleep scores share.", "0-1"),
    FeatureSpec("avg_deep_sleep_minutes_7d", _S, ("sleep",), D7, C.MEAN, "deep_sleep_minutes",
                "float64", "Mean deep_sleep_minutes of the window's sessions.", "minutes"),
    FeatureSpec("avg_rem_sleep_minutes_7d", _S, ("sleep",), D7, C.MEAN, "rem_sleep_minutes",
                "float64", "Mean rem_sleep_minutes of the window's sessions.", "minutes"),
    # --- exercise_features ------------------------------------------------------------------
    FeatureSpec("exercise_count_7d", _E, ("exercise",), D7, C.COUNT, None, "int64",
                "Number of workouts in the window."),
    FeatureSpec("exercise_count_30d", _E, ("exercise",), D30, C.COUNT, None, "int64",
                "Number of workouts in the window."),
    FeatureSpec("exercise_minutes_7d", _E, ("exercise",), D7, C.SUM, "duration_minutes",
                "float64", "Sum of the window's workout duration_minutes.", "minutes"),
    FeatureSpec("exercise_minutes_30d", _E, ("exercise",), D30, C.SUM, "duration_minutes",
                "float64", "Sum of the window's workout duration_minutes.", "minutes"),
    FeatureSpec("avg_exercise_duration_7d", _E, ("exercise",), D7, C.MEAN, "duration_minutes",
                "float64", "Mean duration_minutes of the window's workouts.", "minutes"),
    FeatureSpec("avg_energy_after_exercise_7d", _E, ("exercise",), D7, C.MEAN, "energy_after",
                "float64", "Mean energy_after (1-10) reported after the window's workouts.",
                "1-10"),
    FeatureSpec("exercise_consistency_score", _E, ("exercise",), D30, C.SCORE, None, "float64",
                "min(1, active days / (30 x 3/7)): the 30-day window is cut into 30 slices of "
                "24 tiles counted back from T, a slice with a workout is an active day, and "
                "three active days a week (the common guideline for regular exercise) scores "
                "1; no workout scores 0.", "0-1"),
    FeatureSpec("workout_variety_score_7d", _E, ("exercise",), D7, C.SCORE, "exercise_type",
                "float64", "Shannon entropy of the window's exercise_type counts divided by "
                "ln(8), the entropy of all eight types equally: 0 for a single type, 1 for a "
                "perfectly even mix; null without workouts. Evenness, not just the number of "
                "types, is what cross-training advice asks for.", "0-1"),
    FeatureSpec("high_intensity_count_7d", _E, ("exercise",), D7, C.COUNT, "intensity",
                "int64", "Number of the window's workouts with intensity = high.", value="high"),
    # --- social_features --------------------------------------------------------------------
    FeatureSpec("friend_count", _SO, ("social",), ALL, C.SUM, "friend_delta", "int64",
                "friend_added minus friend_removed events over the user's whole history, "
                "never below 0."),
    FeatureSpec("posts_7d", _SO, ("social",), D7, C.COUNT, "action", "int64",
                "Number of the window's social events with action = post.",
                value="post"),
    FeatureSpec("comments_7d", _SO, ("social",), D7, C.COUNT, "action", "int64",
                "Number of the window's social events with action = comment.",
                value="comment"),
    FeatureSpec("likes_received_7d", _SO, ("social",), D7, C.COUNT, "action", "int64",
                "Number of the window's social events with action = like_received.",
                value="like_received"),
    FeatureSpec("likes_given_7d", _SO, ("social",), D7, C.COUNT, "action", "int64",
                "Number of the window's social events with action = like_given.",
                value="like_given"),
    FeatureSpec("social_engagement_score", _SO, ("social",), D7, C.SCORE, "engagement_weight",
                "float64", "1 - exp(-w / 30), where w sums the window's actions weighted by "
                "effort (post 3, comment 2, like_given 1, friend_added 1, like_received 0.5, "
                "friend_removed 0). Saturating, so a very active week approaches but never "
                "passes 1.", "0-1"),
    FeatureSpec("avg_post_likes", _SO, ("social",), D30, C.RATIO, "action", "float64",
                "likes_received / posts over the last 30 days; null without posts.", "likes"),
    FeatureSpec("comment_rate_7d", _SO, ("social",), D7, C.RATIO, "action", "float64",
                "Comments per day over the window: comments / 7.", "per day"),
    FeatureSpec("friend_interactions_7d", _SO, ("social",), D7, C.COUNT, "target_user_id",
                "int64", "Number of the window's comments and likes given that name a "
                "target_user_id.", value="present"),
    # --- integration_features ---------------------------------------------------------------
    FeatureSpec("active_integrations_count", _SY, ("sync",), D30, C.DISTINCT, "provider",
                "int64", "Number of distinct providers with a sync whose status is success or "
                "partial in the window."),
    FeatureSpec("last_sync_hours_ago", _SY, ("sync",), NOW, C.LATEST, "event_timestamp",
                "float64", "Hours from the newest sync with status success or partial to the "
                "row's time T; null before the first such sync.", "hours"),
    FeatureSpec("avg_heart_rate_7d", _SY, ("sync",), D7, C.MEAN, "heart_rate_avg", "float64",
                "Mean heart_rate_avg over the window's success or partial syncs that carry "
                "it.", "bpm"),
    FeatureSpec("avg_steps_7d", _SY, ("sync",), D7, C.MEAN, "steps", "float64",
                "Mean steps over the window's success or partial syncs that carry it (one sync "
                "is one day's summary).", "steps"),
    FeatureSpec("avg_calories_7d", _SY, ("sync",), D7, C.MEAN, "active_calories", "float64",
                "Mean active_calories over the window's success or partial syncs that carry "
                "it.", "kcal"),
    FeatureSpec("data_completeness_score", _SY, ("sync",), D7, C.SCORE, "metrics_present",
                "float64", "present / (3 x max(n, 7)), where n counts the window's syncs with "
                "status success or partial and present counts the metrics (heart_rate_avg, "
                "steps, active_calories) they carry: 1 only for a full daily summary on seven "
                "days.", "0-1"),
    FeatureSpec("sync_reliability_score", _SY, ("sync",), D7, C.MEAN, "success_weight",
                "float64", "Mean over the window's syncs of 1 for success, 0.5 for partial, 0 for "
                "failed; null without syncs.", "0-1"),
)  # fmt: skip


def view(name: str) -> ViewSpec:
    for spec in VIEWS:
        if spec.name == name:
            return spec
    raise KeyError(f"no feature view {name!r} in the catalog")


def features_of(view_name: str) -> tuple[FeatureSpec, ...]:
    """The features of one view, in catalog order."""
    return tuple(f for f in FEATURES if f.view == view_name)
