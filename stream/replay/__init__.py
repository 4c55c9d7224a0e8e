"""`make replay`: the core driven from history (the archive, a JSONL file, Kafka), written
through the same sinks and writer process as the worker's."""
