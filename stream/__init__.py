"""Aurora Features: Kafka events to exact windowed features in Feast's Redis and Postgres."""

from stream import native as _native

# The aggregation's modules compiled with mypyc, when a current build exists (stream/native.py).
_native.activate(__path__)
