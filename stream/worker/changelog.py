"""The user-state table's changelog records, produced in batches of our own.

Faust's `Table.send_changelog` takes one record at a time through its producer buffer, a
debug log line and aiokafka's per-message path: about half the worker's main thread went there,
one record per changed state per flush. Here the records of a flush are appended to one aiokafka
batch per partition and sent together, and the flush waits for the broker's acknowledgement
before the events are acknowledged (Faust's own path did not wait; its commit did).

The topic is still the table's changelog (`<app id>-user-state-changelog`, partition = the
event's partition), so Faust recovers the table from it as before: this replaces only how
records are produced. A state is several records (stream/core/state.py), all in one batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from stream.core.records import Record
from stream.settings import Settings

logger = logging.getLogger(__name__)

# Per partition and request; a whole state is at most a few hundred KB (720 tiles).
BATCH_BYTES = 1_000_000
# A v2 batch's header, and a record's framing at most: length, attributes, timestamp and offset
# deltas, key and value lengths, header count (varints). Estimates at or above the producer's.
BATCH_HEADER = 61
RECORD_OVERHEAD = 40


class ChangelogProducer:
    def __init__(self, settings: Settings, topic: str) -> None:
        self.settings = settings
        self.topic = topic
        self._producer: Any = None
        self._starting: asyncio.Lock | None = None

    async def _started(self) -> Any:
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._producer is None:
                from aiokafka import AIOKafkaProducer

                producer = AIOKafkaProducer(
                    bootstrap_servers=self.settings.kafka_bootstrap_servers,
                    acks="all",
                    max_batch_size=BATCH_BYTES,
                    max_request_size=BATCH_BYTES + 100_000,
                    **self.settings.aiokafka_client_config(),
                )
                await producer.start()
                self._producer = producer
        return self._producer

    async def send(self, states: Iterable[tuple[int, Iterable[Record]]]) -> dict[int, int]:
        """Send each state's records to its partition; wait until the broker has them all.

        A state's records go in one record batch (`plan`), which the broker appends whole: a
        crash, or a send that fails half way, leaves a state as of one flush or the one before,
        never the head of one and chunks of the other. Returns the offset of the last record
        sent to each partition (a batch's records take consecutive offsets from its base).
        """
        by_partition: dict[int, list[list[Record]]] = {}
        for partition, records in states:
            by_partition.setdefault(partition, []).append(list(records))
        if not by_partition:
            return {}
        producer = await self._started()
        sent: list[tuple[int, int, asyncio.Future[Any]]] = []
        for partition, groups in by_partition.items():
            for records in plan(groups, BATCH_BYTES):
                batch = producer.create_batch()
                for key, value in records:
                    if batch.append(key=key, value=value, timestamp=None) is None:
                        raise AssertionError("plan() made a batch the producer would not take")
                future = await producer.send_batch(batch, self.topic, partition=partition)
                sent.append((partition, len(records), future))
        last: dict[int, int] = {}
        for partition, count, future in sent:
            metadata = await future
            last[partition] = max(last.get(partition, -1), metadata.offset + count - 1)
        return last

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


def plan(groups: Iterable[list[Record]], limit: int) -> list[list[Record]]:
    """The groups' records in order, cut into batches of at most `limit` bytes between groups.

    A group larger than `limit` on its own is cut where it must be; the 30-day bound keeps a
    state far below that (about 300 KB at one event in every hour).
    """
    batches: list[list[Record]] = []
    batch: list[Record] = []
    used = BATCH_HEADER
    for group in groups:
        sizes = [len(k) + len(v or b"") + RECORD_OVERHEAD for k, v in group]
        size = sum(sizes)
        if batch and used + size > limit:
            batches.append(batch)
            batch, used = [], BATCH_HEADER
        if size + BATCH_HEADER > limit:
            logger.warning("a state of %d bytes spans more than one record batch", size)
        for (key, value), record in zip(group, sizes, strict=True):
            if batch and used + record > limit:
                batches.append(batch)
                batch, used = [], BATCH_HEADER
            batch.append((key, value))
            used += record
    if batch:
        batches.append(batch)
    return batches
