"""The user-state table's changelog records, produced in batches of our own.

Faust's `Table.send_changelog` takes one record at a time through its producer buffer, a
debug log line and aiokafka's per-message path: about half the worker's main thread went there,
one record per changed state per flush. Here the records of a flush are appended to one aiokafka
batch per partition and sent together, and the flush waits for the broker's acknowledgement
before the events are acknowledged (Faust's own path did not wait; its commit did).

The topic is still the table's changelog (`<app id>-user-state-changelog`, partition = the
event's partition), and the records are the same bytes, so Faust recovers the table from it
exactly as before: this replaces only how records are produced.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from stream.settings import Settings

logger = logging.getLogger(__name__)

# Per partition and request; a state record is at most a few hundred KB (720 tiles).
BATCH_BYTES = 1_000_000


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

    async def send(self, records: Mapping[bytes, tuple[int, bytes]]) -> int:
        """Send key -> (partition, value) and wait until the broker has them all; how many."""
        if not records:
            return 0
        producer = await self._started()
        by_partition: dict[int, list[tuple[bytes, bytes]]] = {}
        for key, (partition, value) in records.items():
            by_partition.setdefault(partition, []).append((key, value))
        sent: list[asyncio.Future[Any]] = []
        for partition, items in by_partition.items():
            batch = producer.create_batch()
            for key, value in items:
                if batch.append(key=key, value=value, timestamp=None) is not None:
                    continue
                # Full (and closed): send it, and start the next one with this record.
                if batch.record_count():
                    sent.append(await producer.send_batch(batch, self.topic, partition=partition))
                batch = producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None) is None:
                    # Larger than a batch on its own: the producer's single-record path.
                    sent.append(
                        await producer.send(self.topic, value=value, key=key, partition=partition)
                    )
                    batch = producer.create_batch()
            if batch.record_count():
                sent.append(await producer.send_batch(batch, self.topic, partition=partition))
        await asyncio.gather(*sent)
        return len(records)

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
