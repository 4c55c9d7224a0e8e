"""Synthetic traffic: a deterministic population of users, their events with the faults real
clients make, sent to Kafka or a JSONL file."""
