-- The archive keeps each event's JSON as it arrived, byte for byte: `json` stores the text it
-- is given (after checking it is JSON), where `jsonb` parsed it into a binary form, reordering
-- keys and dropping whitespace. That parse was a fifth of the Postgres CPU an archived row cost
-- (bench/README.md, "The archive as it arrived"), and replay, which reads `event::text`,
-- paid for turning it back into text. Queries with ->, ->> and json_* functions work as before.
-- This rewrites the table under an exclusive lock: on a large archive, migrate in a quiet hour.
ALTER TABLE raw_events ALTER COLUMN event TYPE json USING event::json;
