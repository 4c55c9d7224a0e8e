-- Every valid event the workers accept, as received: the source `make replay` recomputes
-- features from. event_id is the key, so a redelivered message adds nothing.
CREATE TABLE raw_events (
    event_id         uuid PRIMARY KEY,
    user_id          text NOT NULL,
    event_type       text NOT NULL,
    event_timestamp  timestamptz NOT NULL,
    event            jsonb NOT NULL,
    source_topic     text,
    source_partition integer,
    source_offset    bigint,
    -- Older than the longest window when it arrived: archived, not aggregated.
    too_late         boolean NOT NULL DEFAULT false,
    received_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX raw_events_user_time ON raw_events (user_id, event_timestamp);
CREATE INDEX raw_events_type_time ON raw_events (event_type, event_timestamp);
