-- The archive and the five snapshot tables, partitioned by event time (a partition a day, made
-- ahead by stream/ops/partitions.py), so that the rows being written go into small indexes
-- that stay in memory however long the history grows, and old days go whole: a DROP, no
-- DELETE, no VACUUM (docs/decisions/0026-partitions-by-day.md).
--
-- Each table keeps its name, columns and grants; its rows stay where they are: the old table
-- becomes the partition of every time up to the day after its newest row (a scan to check the
-- range, no copy), then the partition maintenance adds one partition a day from there. A
-- DEFAULT partition takes a row no partition covers yet, so a far-future or very late event is
-- never refused; the maintenance moves it into its day's partition once that exists.
--
-- The keys include the event time, as a partitioned table's unique keys must. raw_events' is
-- (event_timestamp, event_id), time first: the worker writes in about time order, so its inserts
-- go to the index's right edge, and a day of a 1M-user app (50M rows) costs what an empty day
-- does (event_id first cost twice as much by then); the key is also replay's time-ordered read,
-- so the archive needs no other index. A redelivered event carries its own timestamp, so a
-- retried write still adds nothing. On a large live archive the attach reads the whole table
-- once under an exclusive lock: see docs/operations.md, "History in Postgres", for doing it in a quiet
-- hour or moving the rows in batches instead.
DO $$
DECLARE
    t text;
    old text;
    newest timestamptz;
    bound timestamptz;
    key text;
BEGIN
    FOREACH t IN ARRAY ARRAY['raw_events', 'user_activity_features', 'sleep_features',
                             'exercise_features', 'social_features', 'integration_features'] LOOP
        old := t || '_unpartitioned';
        key := CASE WHEN t = 'raw_events' THEN 'event_timestamp, event_id'
                    ELSE 'user_id, event_timestamp' END;
        EXECUTE format('ALTER TABLE %I RENAME TO %I', t, old);
        EXECUTE format('ALTER TABLE %I RENAME CONSTRAINT %I TO %I', old, t || '_pkey', old || '_pkey');
        IF t = 'raw_events' THEN
            EXECUTE 'ALTER INDEX raw_events_time RENAME TO raw_events_unpartitioned_time';
        END IF;
        EXECUTE format(
            'CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS, PRIMARY KEY (%s)) '
            'PARTITION BY RANGE (event_timestamp)', t, old, key);
        EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', t || '_default', t);

        EXECUTE format('SELECT max(event_timestamp) FROM %I', old) INTO newest;
        IF newest IS NULL THEN
            EXECUTE format('DROP TABLE %I', old);
            CONTINUE;
        END IF;
        -- Up to the end of the newest row's day, and not past tomorrow: a row stamped far ahead
        -- must not make the old table the partition of the months to come.
        bound := least(date_trunc('day', newest, 'UTC'), date_trunc('day', now(), 'UTC'))
                 + interval '1 day';
        EXECUTE format(
            'WITH ahead AS (DELETE FROM %I WHERE event_timestamp >= %L RETURNING *) '
            'INSERT INTO %I SELECT * FROM ahead', old, bound, t);
        IF t = 'raw_events' THEN
            -- The partitioned key, built before the old one goes, so that the attach finds it
            -- (or built beforehand, CONCURRENTLY: docs/operations.md, "History in Postgres").
            CREATE UNIQUE INDEX IF NOT EXISTS raw_events_unpartitioned_key
                ON raw_events_unpartitioned (event_timestamp, event_id);
            ALTER TABLE raw_events_unpartitioned DROP CONSTRAINT raw_events_unpartitioned_pkey;
        END IF;
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (MINVALUE) TO (%L)',
                       t, old, bound);
        EXECUTE format('ALTER TABLE %I RENAME TO %I', old, t || '_before_'
                       || to_char(bound AT TIME ZONE 'UTC', 'YYYYMMDD'));
    END LOOP;
END
$$;

-- Grants are the tables', as in 0004; a partition reached through its table needs none.
GRANT SELECT, INSERT, UPDATE ON
    user_activity_features, sleep_features, exercise_features, social_features,
    integration_features
TO aurora_ingestor;
-- ON CONFLICT (event_timestamp, event_id) DO NOTHING reads the key, and only the key.
GRANT INSERT, SELECT (event_id, event_timestamp) ON raw_events TO aurora_ingestor;
GRANT SELECT ON
    user_activity_features, sleep_features, exercise_features, social_features,
    integration_features, raw_events
TO aurora_trainer;
GRANT SELECT, INSERT, UPDATE, DELETE ON
    user_activity_features, sleep_features, exercise_features, social_features,
    integration_features
TO aurora_backfill;
GRANT SELECT ON raw_events TO aurora_backfill;
