"""Aurora Features: Kafka events to exact windowed features in Feast's Redis and Postgres."""
