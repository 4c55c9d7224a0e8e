"""aiokafka's private names, in one place: bare records for the event topics, and a seek that
leaves a moved position alone.

What this relies on, checked by tests/unit/worker/test_adapters.py, which names the assumption
an upgrade broke:

- `aiokafka.consumer.fetcher.PartitionRecords`: the fetcher makes each partition's reader by
  this module-level name, and the reader wraps each record through its `_consumer_record`;
- `AIOKafkaConsumer._subscription.subscription.assignment.state_value(tp)`, with
  `has_valid_position` and `position`: where a partition's consumer stands now.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Final

from aiokafka.consumer import fetcher as aiokafka_fetcher

# (owner, name) of every private name used, for the test that checks them after an upgrade.
ASSUMED: Final = (
    ("aiokafka.consumer.fetcher", "PartitionRecords"),
    ("aiokafka.consumer.fetcher.PartitionRecords", "_consumer_record"),
    ("aiokafka.AIOKafkaConsumer", "_subscription"),
)

# Per thread: the topics whose records aiokafka's fetcher in this thread hands over bare.
_fetching = threading.local()


def fetch_bare(topics: frozenset[str]) -> None:
    """Have the aiokafka consumers of this thread hand these topics' records over bare.

    Only for topics whose records all go to `collect`, which reads an offset, a key and a value.
    """
    _fetching.bare_topics = topics


def _bare(tp: Any, record: Any) -> Any:
    return record


class _PartitionRecords(aiokafka_fetcher.PartitionRecords):  # type: ignore[misc]
    """aiokafka's reader of a partition's fetched records, with bare records where asked.

    aiokafka wraps every record in a ConsumerRecord (sizes computed, headers copied into a
    tuple): two thirds of the 3 us a record cost the consumer thread, which holds the GIL the
    worker's event loop waits for meanwhile (docs/decisions/0018-bare-records-from-aiokafka.md).
    aiokafka's own record has the offset, key and value. Faust's per-record path, which the
    changelog's records take, needs ConsumerRecords, and gets them.
    """

    def __init__(self, tp: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(tp, *args, **kwargs)
        if tp.topic in getattr(_fetching, "bare_topics", ()):
            # Looked up on the instance for each record.
            self._consumer_record = _bare


# aiokafka's fetcher makes its readers by this module-level name; no thread that did not ask
# sees a difference.
aiokafka_fetcher.PartitionRecords = _PartitionRecords


def seek_unmoved(consumer: Any, rewinds: Mapping[Any, tuple[int, int]]) -> dict[Any, int]:
    """Seek each partition back to its first undelivered offset, unless its position moved
    since the fetch (a seek of Faust's recovery wins). Run on the consumer's own loop, with no
    await between the check and the seek. Returns the partitions sought, with their offsets.
    """
    assigned = consumer.assignment()
    subscription = consumer._subscription.subscription
    done: dict[Any, int] = {}
    if subscription is None or subscription.assignment is None:
        return done
    for tp, (expected, offset) in rewinds.items():
        if tp not in assigned:
            continue
        state = subscription.assignment.state_value(tp)
        if state.has_valid_position and state.position == expected:
            consumer.seek(tp, offset)
            done[tp] = offset
    return done
