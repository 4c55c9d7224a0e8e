-- `make replay` reads the archive in event-time order over a time range.
CREATE INDEX raw_events_time ON raw_events (event_timestamp);
