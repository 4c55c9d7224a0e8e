-- Least-privilege roles, as NOLOGIN groups: grant one to each login user
-- (GRANT aurora_ingestor TO worker_user). Roles are cluster-wide; the grants below are on this
-- schema's tables only.
--   aurora_ingestor  the worker: appends raw events, upserts the feature snapshots it computes.
--                    No DELETE, TRUNCATE or DDL; it reads only the key columns its
--                    ON CONFLICT clauses need (never the archived events' payloads).
--   aurora_trainer   training jobs and get_historical_features: read only.
--   aurora_backfill  `make replay`: reads the archive, replaces snapshot ranges (DELETE).
DO $$
DECLARE
    name text;
    may_create boolean;
BEGIN
    SELECT rolcreaterole OR rolsuper INTO may_create FROM pg_roles WHERE rolname = current_user;
    FOREACH name IN ARRAY ARRAY['aurora_ingestor', 'aurora_trainer', 'aurora_backfill'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = name) THEN
            IF NOT may_create THEN
                RAISE EXCEPTION 'role % does not exist and % may not create roles: '
                    'ask an administrator to run CREATE ROLE % NOLOGIN, then migrate again',
                    name, current_user, name;
            END IF;
            EXECUTE format('CREATE ROLE %I NOLOGIN', name);
        END IF;
    END LOOP;
    EXECUTE format(
        'GRANT USAGE ON SCHEMA %I TO aurora_ingestor, aurora_trainer, aurora_backfill',
        current_schema()
    );
END
$$;

-- Upserts (ON CONFLICT DO UPDATE) need SELECT and UPDATE as well as INSERT.
GRANT SELECT, INSERT, UPDATE ON
    user_activity_features, sleep_features, exercise_features, social_features,
    integration_features
TO aurora_ingestor;
-- ON CONFLICT (event_id) DO NOTHING reads the key, and only the key.
GRANT INSERT, SELECT (event_id) ON raw_events TO aurora_ingestor;

GRANT SELECT ON
    user_activity_features, sleep_features, exercise_features, social_features,
    integration_features, raw_events
TO aurora_trainer;

GRANT SELECT, INSERT, UPDATE, DELETE ON
    user_activity_features, sleep_features, exercise_features, social_features,
    integration_features
TO aurora_backfill;
GRANT SELECT ON raw_events TO aurora_backfill;
