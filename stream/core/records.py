"""The records that cross module boundaries: a Kafka message in, feature rows, archive rows and
changelog records out.

Every package imports these from here, never from the module that makes them, so the sinks and
the worker depend on this file and not on the aggregation. Compiled with the rest of the core
(stream/core/native.py): state and ingest build one Row or Message per event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)  # not frozen: one per event, and a frozen __init__ costs 4x
class Message:
    """A Kafka message as the ingest needs it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


@dataclass(slots=True)  # not frozen: one per event, and a frozen __init__ costs 4x
class Row:
    """One feature row of one view: what is pushed online and appended offline."""

    view: str
    user_id: str
    row_us: int
    values: dict[str, Any]


# A raw_events row: event_id, user_id, event_type, event_timestamp, the event's JSON as it
# arrived, source topic, partition and offset, too_late (stream.sinks.archive.COLUMNS).
ArchiveRow = tuple[str, str, str, str, str, str, int, int, bool]

# A changelog record of a user state: key and value; a None value is a tombstone.
Record = tuple[bytes, bytes | None]
