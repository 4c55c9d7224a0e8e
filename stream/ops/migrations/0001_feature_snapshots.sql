-- Feature snapshot tables, one per feature view: the batch sources behind Feast's push
-- sources. The primary key (user_id, event_timestamp) is the index point-in-time joins use
-- and the key that makes a retried offline push add nothing.

CREATE TABLE user_activity_features (
    user_id text NOT NULL,
    event_timestamp timestamptz NOT NULL,
    activity_count_24h bigint,
    activity_count_7d bigint,
    activity_count_30d bigint,
    total_minutes_24h double precision,
    total_minutes_7d double precision,
    total_minutes_30d double precision,
    activity_diversity_7d bigint,
    activity_diversity_30d bigint,
    most_common_activity_24h text,
    avg_energy_7d double precision,
    avg_mood_7d double precision,
    PRIMARY KEY (user_id, event_timestamp)
);

CREATE TABLE sleep_features (
    user_id text NOT NULL,
    event_timestamp timestamptz NOT NULL,
    avg_sleep_duration_7d double precision,
    avg_sleep_duration_30d double precision,
    sleep_consistency_7d double precision,
    avg_bedtime_hour_7d double precision,
    sleep_sessions_7d bigint,
    sleep_debt_minutes double precision,
    sleep_quality_score double precision,
    avg_deep_sleep_minutes_7d double precision,
    avg_rem_sleep_minutes_7d double precision,
    PRIMARY KEY (user_id, event_timestamp)
);

CREATE TABLE exercise_features (
    user_id text NOT NULL,
    event_timestamp timestamptz NOT NULL,
    exercise_count_7d bigint,
    exercise_count_30d bigint,
    exercise_minutes_7d double precision,
    exercise_minutes_30d double precision,
    avg_exercise_duration_7d double precision,
    avg_energy_after_exercise_7d double precision,
    exercise_consistency_score double precision,
    workout_variety_score_7d double precision,
    high_intensity_count_7d bigint,
    PRIMARY KEY (user_id, event_timestamp)
);

CREATE TABLE social_features (
    user_id text NOT NULL,
    event_timestamp timestamptz NOT NULL,
    friend_count bigint,
    posts_7d bigint,
    comments_7d bigint,
    likes_received_7d bigint,
    likes_given_7d bigint,
    social_engagement_score double precision,
    avg_post_likes double precision,
    comment_rate_7d double precision,
    friend_interactions_7d bigint,
    PRIMARY KEY (user_id, event_timestamp)
);

CREATE TABLE integration_features (
    user_id text NOT NULL,
    event_timestamp timestamptz NOT NULL,
    active_integrations_count bigint,
    last_sync_hours_ago double precision,
    avg_heart_rate_7d double precision,
    avg_steps_7d double precision,
    avg_calories_7d double precision,
    data_completeness_score double precision,
    sync_reliability_score double precision,
    PRIMARY KEY (user_id, event_timestamp)
);
