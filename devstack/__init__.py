"""The real single-node stack (Kafka, PostgreSQL, Redis) that `make up` starts."""
