"""Aurora Features: Kafka events to exact windowed features in Feast's Redis and Postgres.

The packages follow the data path: `core` (pure: events to rows and state records), `worker`
(the Faust app that drives the core from Kafka), `sinks` (where rows, archive and state go),
`replay` (the core driven from history), `featurestore` (the Feast definitions), `ops`
(schema, topics, status, quality), `synth` (synthetic traffic) and `cli` (the commands).
"""
