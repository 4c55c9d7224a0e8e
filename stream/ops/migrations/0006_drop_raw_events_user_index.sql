-- No query reads the archive by user: replay reads by time, and so does everything else here.
-- The index took each event's (user_id, event_timestamp) in random order, on the worker's
-- hottest table: 2 of the 8.6 us of Postgres CPU an archived row cost, on a new table, and more
-- the larger the archive grows past memory (bench/README.md, "The archive as it arrived").
-- A user's history over a time range still goes through raw_events_time; a deployment that
-- reads single users often can create the index again, concurrently, and pay that cost.
DROP INDEX IF EXISTS raw_events_user_time;
