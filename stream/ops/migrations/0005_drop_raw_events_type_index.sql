-- No query reads the archive by event type (replay reads by time, a user's history by
-- user_id), and every archived event paid an insertion into this index: one of four per event,
-- on the worker's hottest table.
DROP INDEX IF EXISTS raw_events_type_time;
