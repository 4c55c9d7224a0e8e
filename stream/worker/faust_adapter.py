"""The Faust adapter: the worker's consumer, and every private name of Faust it relies on.

The event topics' records go to the runtime a fetch of a topic at a time, as one batch, with no
await between the checks and the hand-over; their offsets are acknowledged in bulk once the
batch is written. Invariants: every record fetched is delivered or fetched again, and no offset
is committed past one that was not acknowledged (docs/decisions/0002-a-consumer-that-loses-
nothing.md says which of Faust's paths lost records, and how each is closed).

What it relies on of Faust's aiokafka `Consumer`, checked by tests/unit/worker/test_adapters.py
(which names the assumption an upgrade broke): it overrides `_wait_next_records`,
`_new_consumer_thread` and `_new_offset`; it reads and writes `_read_offset`,
`_committed_offset`, `_acked`, `_acked_index`, `_n_acked`, `_waiting_for_ack`, `_gap` and
`_buffered_partitions`; it calls `_to_message`, `_add_gap`, `_is_changelog_tp` and its
thread's `call_thread` and `_ensure_consumer`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any, Final

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message
from faust.types.tuples import ack_lock
from mode.services import WaitArgT, WaitResults
from mode.utils.futures import notify

from stream.worker.aiokafka_adapter import fetch_bare, seek_unmoved
from stream.worker.batches import Acks, BatchSink, Rewinds, collect, head_missing, undelivered
from stream.worker.stepping import first_step

logger = logging.getLogger(__name__)

# Faust's private names this module relies on, for the test that names the one an upgrade
# broke: methods of its aiokafka Consumer, state every consumer holds, methods of its thread.
ASSUMED_METHODS: Final = (
    "_wait_next_records",
    "_new_consumer_thread",
    "_new_offset",
    "_to_message",
    "_add_gap",
    "_is_changelog_tp",
)
ASSUMED_STATE: Final = (
    "_read_offset",
    "_committed_offset",
    "_acked",
    "_acked_index",
    "_n_acked",
    "_waiting_for_ack",
    "_gap",
    "_buffered_partitions",
    "_thread",
)
ASSUMED_THREAD_METHODS: Final = ("call_thread", "_ensure_consumer")


class Consumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer; every record it fetches is delivered or fetched again."""

    _fetched: Mapping[Any, list[Any]] | None = None
    _cut_short = False  # the last delivery was cancelled before it finished
    _seeks = 0  # seeks to the committed offsets so far
    _seek_read: Mapping[Any, int | None] = {}  # the read offsets the last such seek set
    _seeked: asyncio.Future[None] | None = None  # resolved by the next such seek
    _holding = False  # flow control suspended by resume_partitions, for Faust to resume

    @property
    def sink(self) -> BatchSink | None:
        sink: BatchSink | None = getattr(self.transport, "sink", None)
        return sink

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _wait_next_records(self, timeout: float) -> tuple[Any, Any]:
        records, active = await super()._wait_next_records(timeout)
        self._fetched = records
        return records, active

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        """Faust's fetch, with the event topics' records handed to the sink in batches.

        The other records (the changelog's, read by Faust's recovery and standbys) go on one at
        a time, through Faust's conductor, as before.
        """
        self._fetched = None
        # Taken before the fetch: a seek or a rebalance while it waits makes its records stale.
        generation, seeks = self.app.consumer_generation_id, self._seeks
        records, active = await self._wait_next_records(timeout)
        if records is None or self.should_stop:
            return
        delivered: dict[Any, list[int]] = {}
        if not self.flow_active:
            # As Faust does: a fetch made while the flow stopped goes back to the committed
            # offsets (the rewind below leaves a partition that seek moved alone).
            try:
                await self.perform_seek()
            except Exception as exc:
                logger.warning("the seek after a fetch without flow failed: %r", exc)
        else:
            buffered = self._buffered_partitions
            sink = self.sink
            batches: dict[str, list[tuple[Any, list[Any]]]] = defaultdict(list)
            singles: dict[Any, list[Any]] = {}
            for tp, tp_records in records.items():
                if active is not None and tp not in active and tp not in buffered:
                    continue  # paused since the fetch: read again, by the rewind
                if sink is not None and tp.topic in sink.topics:
                    batches[tp.topic].append((tp, tp_records))
                else:
                    singles[tp] = tp_records
            if singles:
                one_by_one = self._one_by_one(singles, delivered, generation, seeks)
                async for tp, message in one_by_one:
                    yield tp, message
            if batches and sink is not None:
                await self._deliver(sink, batches, delivered, generation, seeks)
        # Not reached when the generator is closed early (the worker is stopping).
        fetched, self._fetched = self._fetched, None
        if fetched and not self.should_stop:
            rewinds = undelivered(fetched, delivered)
            if rewinds:
                await self._rewind(rewinds)

    def _stale(self, generation: int, seeks: int) -> bool:
        """A fetch made before a rebalance, a seek or a stopped flow is not delivered."""
        return (
            not self.flow_active
            or self.app.consumer_generation_id != generation
            or self._seeks != seeks
        )

    async def _one_by_one(
        self,
        records: Mapping[Any, list[Any]],
        delivered: dict[Any, list[int]],
        generation: int,
        seeks: int,
    ) -> AsyncIterator[tuple[TP, Message]]:
        to_message = self._to_message
        for tp, record in self.scheduler.iterate(records):
            if self._stale(generation, seeks):
                # The rest of this batch may predate the seek: it is not delivered, and the
                # rewind leaves each partition where the seek put it, or sends it back.
                return
            self._cut_short = False
            message = to_message(tp, record)
            yield tp, message
            if self._seeks != seeks and tp in self._seek_read:
                # The seek came while this message was being delivered, and Faust then marked
                # it read over the read offset the seek had set: the records the seek sends
                # again would be skipped as read.
                self._read_offset[tp] = self._seek_read[tp]
            if not self._cut_short:
                delivered.setdefault(tp, []).append(message.offset)

    async def _deliver(
        self,
        sink: BatchSink,
        batches: Mapping[str, list[tuple[Any, list[Any]]]],
        delivered: dict[Any, list[int]],
        generation: int,
        seeks: int,
    ) -> None:
        """Each topic's records as one batch, handed over with no await before it is taken.

        So no seek or rebalance can come between the check and the hand-over; the read
        offsets move on with it, as Faust's loop moves them per message.
        """
        acks_enabled = self.app.topics.acks_enabled_for
        flow = self.app.flow_control
        for topic, parts in batches.items():
            if not flow.is_active():
                await flow.acquire()  # as Faust's conductor waits, before each message
            if self._stale(generation, seeks):
                return
            batch = collect(topic, parts, self._read_offset)
            sink.take(batch.messages, Acks(self, batch.offsets))
            for tp, offset in batch.read.items():
                self._read_offset[tp] = offset
            delivered.update(batch.fetched)
            if acks_enabled(topic):
                for tp, start, end in batch.gaps:
                    await self._add_gap(tp, start, end)
            await sink.settle()

    def read_offset(self, tp: TP) -> int | None:
        """The last offset of `tp` handed over (None before the first)."""
        offset: int | None = self._read_offset.get(tp)
        return offset

    def committed_offset(self, tp: TP) -> int | None:
        """The next offset of `tp` the group would read after a restart (None before any)."""
        offset: int | None = self._committed_offset.get(tp)
        return offset

    def ack_offsets(self, tp: TP, offsets: Iterable[int]) -> None:
        """Faust's `ack` for offsets of one partition at once, without its Message objects."""
        if not self.app.topics.acks_enabled_for(tp.topic):
            return
        with ack_lock:
            committed = self._committed_offset[tp]
            index = self._acked_index[tp]
            acked = self._acked[tp]
            count = 0
            for offset in offsets:
                if (committed is None or offset >= committed) and offset not in index:
                    index.add(offset)
                    acked.append(offset)
                    count += 1
            self._n_acked += count
        notify(self._waiting_for_ack)

    async def wait_empty(self) -> None:
        """Faust waits here, on a rebalance or a stop, for the events being processed; the
        batches the sink holds are such events too."""
        sink = self.sink
        while sink is not None and sink.pending() and not self.should_stop:
            await asyncio.sleep(0.05)
        await super().wait_empty()

    async def _rewind(self, rewinds: Rewinds) -> None:
        done: dict[Any, int] = await self._thread.call_thread(self._rewind_in_thread, rewinds)
        if not done:
            return
        for tp, offset in done.items():
            # As Faust's own seek does: the next offset to read, so nothing re-read is dropped.
            self._read_offset[tp] = offset
        count = sum(rewinds[tp][0] - offset for tp, offset in done.items())
        logger.info(
            "reading again %d fetched records Faust did not deliver, in %d partitions",
            count,
            len(done),
        )

    async def _rewind_in_thread(self, rewinds: Rewinds) -> dict[Any, int]:
        # On the consumer thread's loop: a position moved since the fetch is left alone.
        return seek_unmoved(self._thread._ensure_consumer(), rewinds)

    async def wait_first(self, *coros: WaitArgT, timeout: Any = None) -> WaitResults:
        """Faust's per-message race of a delivery against the suspend event, without tasks
        for a delivery that does not wait (stream/worker/stepping.py)."""
        if len(coros) != 2 or timeout is not None or not asyncio.iscoroutine(coros[0]):
            return await super().wait_first(*coros, timeout=timeout)
        delivery, suspended = coros[0], coros[1]
        waiting: Any = delivery
        if not self.suspend_flow.is_set():
            try:
                finished, outcome = first_step(delivery)
            except BaseException:
                _close(suspended)
                raise
            if finished:
                _close(suspended)
                return WaitResults([delivery], [outcome], False)
            waiting = outcome  # the rest of the delivery, raced as Faust races it
        # A seek drops a delivery still waiting: its record may predate the seek, which reads
        # it again in order. (Shielded: mode cancels the futures that lose the race.)
        if self._seeked is None:
            self._seeked = asyncio.get_running_loop().create_future()
        seeked = asyncio.shield(self._seeked)
        results: WaitResults = await super().wait_first(waiting, suspended, seeked)
        if not any(done is waiting for done in results.done):
            self._cut_short = True
        return results

    def _new_offset(self, tp: TP) -> int | None:
        committed = self._committed_offset[tp]
        acked = self._acked[tp]
        # A gap is a range Faust found missing from the log itself (compaction, markers).
        in_gap = committed is not None and bool(self._gap[tp].overlaps(committed))
        if head_missing(committed, acked, in_gap):
            return None
        offset: int | None = super()._new_offset(tp)
        return offset

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed = await super().seek_to_committed()
        fresh = [
            tp for tp, offset in committed.items() if not offset and not self._is_changelog_tp(tp)
        ]
        if fresh:
            await self._thread.call_thread(self._to_beginning_in_thread, fresh)
        self.note_seek(committed)
        return committed

    def note_seek(self, committed: Mapping[Any, int | None]) -> None:
        """A seek to these committed offsets happened: batches and deliveries before it stop."""
        # What Faust's perform_seek sets as read offsets from these.
        self._seek_read = {
            tp: offset if offset is not None and offset >= 0 else None
            for tp, offset in committed.items()
        }
        self._seeks += 1
        seeked, self._seeked = self._seeked, None
        if seeked is not None and not seeked.done():
            seeked.set_result(None)

    async def _to_beginning_in_thread(self, tps: Iterable[Any]) -> None:
        consumer = self._thread._ensure_consumer()
        assigned = consumer.assignment()
        mine = [tp for tp in tps if tp in assigned]
        if mine:
            await consumer.seek_to_beginning(*mine)

    def resume_partitions(self, tps: Iterable[TP]) -> None:
        tps = set(tps)
        flow = self.app.flow_control
        if flow.is_active() and any(not self._is_changelog_tp(tp) for tp in tps):
            # Faust's recovery resumes the stream partitions, seeks them to the committed
            # offsets, and only then resumes flow control, which empties every stream buffer.
            # Events delivered in between were lost, Faust's read offsets already past them.
            # Held here instead, they are delivered once that resume has emptied the buffers.
            flow.suspend()
            self._holding = True
        super().resume_partitions(tps)

    async def perform_seek(self) -> None:
        try:
            await super().perform_seek()
        except BaseException:
            # Faust's recovery stops short of resuming flow control when its seek fails.
            self.release_held_flow()
            raise

    def release_held_flow(self) -> None:
        """Resume flow control if resume_partitions held it and nothing resumed it since."""
        if self._holding and not self.app.flow_control.is_active():
            logger.warning("resuming the flow control held for a seek that did not complete")
            self.app.flow_control.resume()
        self._holding = False


def _close(awaitable: Any) -> None:
    # The suspend event's wait() coroutine, never awaited: closed so Python does not warn.
    if asyncio.iscoroutine(awaitable):
        awaitable.close()


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, fetching the sink's topics as bare records."""

    async def on_start(self) -> None:
        # Runs in the thread itself, before it creates and starts aiokafka's consumer.
        sink: BatchSink | None = getattr(self.consumer, "sink", None)
        fetch_bare(sink.topics if sink is not None else frozenset())
        await super().on_start()


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer
    # Where the event topics' records go, a batch at a time; None delivers all one by one.
    sink: BatchSink | None = None
