"""The pure core: a Kafka message in; feature rows, archive rows and state records out.

No Kafka, Redis or Postgres here; the worker and replay both drive it, so one implementation of
the windows serves both. The per-event modules run compiled with mypyc when a current build
exists (stream/core/native.py).
"""

from stream.core import native as _native

_native.activate(__path__)
