"""What the worker's batches share: the user states, the flush queue, the writer process.

The consumer hands the runtime each fetch of an event topic as one batch
(stream/worker/faust_adapter.py); the runtime runs it through the core's `Ingestor` and queues it.
The flusher writes dead letters to the DLQ topic, then hands the rows and the archive to the
writer process (stream/sinks/writer.py), then sends each changed state to the changelog, and
only then acknowledges the batch's offsets: a crash at any point replays the batch, and every
effect is idempotent. A timer sweeps idle users so windows decay.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import islice
from typing import Any, NoReturn

from faust.types import TP

from stream.catalog import EVENT_TYPES
from stream.core.codec import decode_head, is_binary
from stream.core.ingest import BatchResult, Ingestor, combine, summarize
from stream.core.records import Message, Row
from stream.core.state import UserState, head_key, row_may_change
from stream.settings import Settings
from stream.sinks import writer
from stream.sinks.base import Flush
from stream.sinks.state_store import Changes
from stream.worker import faust_adapter
from stream.worker.batches import Acks
from stream.worker.changelog import ChangelogProducer
from stream.worker.metrics import Metrics
from stream.worker.store import Loaded, StateRecords, state_records
from stream.worker.watchdog import Watchdog

logger = logging.getLogger(__name__)

FATAL_EXIT_CODE = 70
LAG_EVERY_S = 5.0
# Two: the writer process has the next flush queued while it writes one; more would only
# split the queue into smaller flushes, and each push has a fixed cost.
WRITES_IN_FLIGHT = 2


# States the sweep looks at between two flushes of its rows: bounds what it holds at once.
SWEEP_PAGE = 5_000


@dataclass(frozen=True, slots=True)
class Pending:
    result: BatchResult
    acks: Acks | None
    taken: float  # time.monotonic() when it was queued
    # Resolved once written: the sweep waits on it, so it holds one page of states at a time.
    written: asyncio.Future[None] | None = None

    @property
    def events(self) -> int:
        return self.acks.count if self.acks is not None else 0


class Runtime:
    """What the batches share: user states, the DLQ, and the writer process."""

    def __init__(self, settings: Settings, table: Any, dlq: Any) -> None:
        self.settings = settings
        self.table = table
        self.dlq = dlq
        # The states decoded in memory, least recently used first; the store holds them all.
        self.states: OrderedDict[tuple[str, str], UserState] = OrderedDict()
        self._records: StateRecords | None = None
        self._storing: set[asyncio.Future[None]] = set()  # store writes not yet done
        topic_types = {settings.topic_for(t): t for t in EVENT_TYPES}
        self.topic_types = topic_types
        self.topics = frozenset(topic_types)  # what the consumer hands over in batches
        self.ingestor = Ingestor(
            topic_types, self.load_state, max_ahead_s=settings.event_max_ahead_s
        )
        self.metrics = Metrics()
        # The table's changelog topic, named as Faust names it, without creating Faust's Topic
        # object before the app is configured.
        self.changelog = ChangelogProducer(
            settings, f"{settings.worker_app_id}-{table.name}-changelog"
        )
        self.watchdog = Watchdog(settings.worker_stall_after_s)
        self.writer: ProcessPoolExecutor | None = None
        self.totals: dict[str, int] = {}
        self._queue: list[Pending] = []
        self._queued_events = 0  # taken and not yet written, in flushes or not
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._publishing: asyncio.Task[None] | None = None
        # Whether the consumer is worker_flush_min events or more behind the log's end, as of the
        # last lag reading; a worker that starts mostly starts with a backlog.
        self.behind = True
        # A place for each write the writer process may hold at once (WRITES_IN_FLIGHT).
        self._writes = asyncio.Semaphore(WRITES_IN_FLIGHT)
        # Which partitions this worker owns now; build_app points it at the consumer.
        self.owned: Callable[[], set[int]] = lambda: set()

    def start_writer(self) -> None:
        """Start the writer process (once logging is configured, so it logs at the same level)."""
        if self.writer is None:
            self.writer = writer.start(self.settings)

    @property
    def records(self) -> StateRecords:
        """The table's store (made by Faust on first use, so not in the constructor)."""
        if self._records is None:
            self._records = state_records(self.table.data)
        return self._records

    def load_state(self, user_id: str, event_type: str) -> UserState:
        key = (user_id, event_type)
        states = self.states
        state = states.get(key)
        if state is None:
            state = states[key] = _state(
                user_id, event_type, self.records.load(head_key(user_id, event_type))
            )
        else:
            states.move_to_end(key)
        return state

    def _prefetch(self, messages: list[Message]) -> None:
        """Load the batch's states that are not in memory in a few reads, not one each.

        Producers key events by user id (stream/producer.py) and a topic is one event type, so
        the states a batch needs are known before it is decoded; one keyed otherwise is loaded
        on its own when its event comes (`load_state`).
        """
        states = self.states
        wanted: dict[bytes, tuple[str, str]] = {}
        for message in messages:
            event_type: str | None = self.topic_types.get(message.topic)
            key = message.key
            if event_type is None or not key:
                continue
            try:
                user_id = key.decode()
            except UnicodeDecodeError:
                continue
            if (user_id, event_type) not in states:
                wanted[head_key(user_id, event_type)] = (user_id, event_type)
        if not wanted:
            return
        found = self.records.load_many(list(wanted))
        for head, (user_id, event_type) in wanted.items():
            states[(user_id, event_type)] = _state(user_id, event_type, found.get(head))

    def evict(self) -> int:
        """Drop the least recently used states past worker_state_cache from memory.

        Only states whose every change is in the store: a state a flush still writes stays,
        or the next event would read it back older than it is.
        """
        states = self.states
        over = len(states) - self.settings.worker_state_cache
        if over <= 0:
            return 0
        # Stops at the first `over` found, oldest first: a full scan per flush cost O(cache).
        gone = list(islice((key for key, state in states.items() if not state.pending), over))
        for key in gone:
            del states[key]
        return len(gone)

    def forget(self, revoked: set[TP]) -> None:
        """Drop the states of partitions another worker now owns; it restores them itself."""
        gone = {tp.partition for tp in revoked}
        for key, state in list(self.states.items()):
            if state.partition in gone and not state.pending:
                del self.states[key]

    def take(self, messages: list[Message], acks: Acks) -> None:
        """One fetched batch of one event topic: processed now, written by the flusher.

        The consumer calls this with no await between its checks and the call, so no seek or
        rebalance comes between them; the batch's events are acknowledged once it is written.
        """
        self.watchdog.progress(time.monotonic())
        try:
            self._prefetch(messages)
            result = self.ingestor.process(messages)
        except Exception:
            # Not left to Faust's fetcher, which runs this: stop, as on any failure retries
            # cannot cure. The batch is unacknowledged, so a restart reads it again.
            _fatal("processing a batch failed; stopping the worker")
        if messages:
            # The consumer hands over one topic at a time: a batch is all of one event type.
            event_type = self.topic_types.get(messages[0].topic, "unknown")
            self.metrics.batch(event_type, len(messages), result)
        self._enqueue(Pending(result, acks, time.monotonic()))

    async def settle(self) -> None:
        """Backpressure: the consumer waits while the writer is this far behind."""
        while self._queued_events > self.settings.worker_queue_max:
            self._drained.clear()
            await self._drained.wait()

    def pending(self) -> int:
        return self._queued_events

    async def flush(self, result: BatchResult) -> None:
        """Write rows made outside a batch of events (the sweep's); return once written."""
        written = asyncio.get_running_loop().create_future()
        self._enqueue(Pending(result, None, time.monotonic(), written))
        await written

    def _enqueue(self, pending: Pending) -> None:
        """Queue a batch for writing; its events are acknowledged once it is written.

        Consuming and writing overlap: while the writer process writes one flush, the consumer
        hands over the next batches, which the flusher then writes together (each Feast push has
        a fixed cost, so fewer, larger writes are faster).
        """
        self._queue.append(pending)
        self._queued_events += pending.events
        self._wake.set()
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_forever())

    async def _flush_forever(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                if self._queue:
                    # A place with the writer first, the queue after: the flush then holds
                    # every batch that came while the writer was busy.
                    await self._writes.acquire()
                    await self._fill()
                    queued, self._queue = self._queue, []
                    result = combine(p.result for p in queued)
                    # Taken with the queue, with no await between: each state as of the newest
                    # batch that changed it, all of which this flush writes. Its records are
                    # sent only once these rows are written, so a restarted worker never holds
                    # a state whose rows were not written. A state changed by several of the
                    # batches is encoded once, not once per batch.
                    changes: Changes = []
                    for partition, state in result.dirty.values():
                        state.partition = partition
                        state.pending += 1  # kept in memory until the store holds this
                        changes.append((partition, state.changes()))
                    await self._write_batch(queued, result, changes)
        except asyncio.CancelledError:
            raise
        except Exception:
            _fatal("a write failed for a reason retries cannot cure; stopping")

    async def _fill(self) -> None:
        """Wait for the queue to hold worker_flush_min events, worker_flush_wait_s at most.

        Only while the worker is behind: at the log's end, events come no faster than they are
        sent, and waiting would only make them later online. Never while the consumer waits on
        backpressure: that would only stall both.
        """
        if not self.behind:
            return
        deadline = self._queue[0].taken + self.settings.worker_flush_wait_s
        # The queue holds a few batches: summed at each wake-up rather than kept in step.
        while (
            sum(p.events for p in self._queue) < self.settings.worker_flush_min
            and self._queued_events <= self.settings.worker_queue_max
        ):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), left)
            except TimeoutError:
                return

    async def _write_batch(
        self, queued: list[Pending], result: BatchResult, changes: Changes
    ) -> None:
        """Hand a flush's rows and archive to the writer, and its changelog and acks to a task.

        Up to WRITES_IN_FLIGHT flushes are with the writer process at once, so it starts on the
        next as soon as it has written one, instead of idling while this loop packs that next
        one. It writes them in the order given; the publishing tasks run one after another, each
        once its own write is done, so records and acknowledgements keep that order too.
        """
        # Dead letters first: their events are acknowledged with the rest of their batch.
        for message, record in result.dead_letters:
            await self.dlq.send(key=message.key, value=record)
        # The flusher took a place with the writer before this flush's queue; released here.
        places = self._writes
        write: asyncio.Future[tuple[int, dict[str, int]]] | None = None
        began = time.monotonic()
        if result.rows or result.archive:
            if self.writer is None:
                self.start_writer()
            payload = writer.pack(Flush(result.rows, result.archive))
            write = asyncio.get_running_loop().run_in_executor(self.writer, writer.write, payload)
            write.add_done_callback(lambda _: places.release())
        else:
            places.release()
        self._publishing = asyncio.get_running_loop().create_task(
            self._publish(queued, result, changes, write, began, self._publishing)
        )

    async def _publish(
        self,
        queued: list[Pending],
        result: BatchResult,
        changes: Changes,
        write: asyncio.Future[tuple[int, dict[str, int]]] | None,
        began: float,
        previous: asyncio.Task[None] | None,
    ) -> None:
        if write is not None:
            try:
                retries, newest = await write
            except asyncio.CancelledError:
                raise
            except Exception:
                _fatal("a write failed for a reason retries cannot cure; stopping")
            self.metrics.written(newest, len(result.rows), time.monotonic() - began, retries)
        try:
            if previous is not None:
                await previous
            last = await self._send_changelog(changes)
            # The local store mirrors the changelog, so a state dropped from memory (evicted,
            # or on a rebalance) is read back as we last wrote it, and a restart reads only the
            # changelog's records after `last`. The writer process writes it, in flush order;
            # until it has, the flush's states stay in memory.
            self._store(changes, last, [state for _, state in result.dirty.values()])
            for pending in queued:
                if pending.acks is not None:
                    pending.acks.done()
                if pending.written is not None and not pending.written.done():
                    pending.written.set_result(None)
                self._queued_events -= pending.events
            self._drained.set()
            for name, count in summarize(result).items():
                self.totals[name] = self.totals.get(name, 0) + count
        except asyncio.CancelledError:
            raise
        except Exception:
            _fatal("publishing the changelog failed for a reason retries cannot cure; stopping")

    def _store(self, changes: Changes, last: dict[int, int], states: list[UserState]) -> None:
        def stored(done: asyncio.Future[None] | None = None) -> None:
            if done is not None and not done.cancelled() and done.exception() is not None:
                _fatal("writing the local state store failed; stopping")
            for state in states:
                state.pending -= 1
            self.evict()

        job = self.records.job(self.changelog.topic, changes, last)
        if job is None:
            stored()
            return
        if self.writer is None:
            self.start_writer()
        function, payload = job
        write = asyncio.get_running_loop().run_in_executor(self.writer, function, payload)
        self._storing.add(write)
        write.add_done_callback(self._storing.discard)
        write.add_done_callback(stored)

    async def stored(self) -> None:
        """Wait until the local store holds every flush published so far (a clean stop)."""
        if self._storing:
            await asyncio.gather(*self._storing, return_exceptions=True)

    async def _send_changelog(self, changes: Changes) -> dict[int, int]:
        """The changelog records, retried while Kafka is away (the events wait unacknowledged)."""
        from aiokafka.errors import KafkaError

        delay = 0.2
        while True:
            try:
                return await self.changelog.send(changes)
            except (KafkaError, TimeoutError) as exc:
                logger.warning("changelog send failed, retrying in %.1fs: %r", delay, exc)
                await asyncio.sleep(delay)
                delay = min(10.0, delay * 2)

    def update_lag(self, consumer: Any) -> int:
        """Lag per owned event-topic partition (the high watermark minus the read position).

        Returns the events not yet committed, over those partitions: what the watchdog needs,
        since Faust's read position cannot tell one unread event from none after a seek.
        """
        lags = {}
        uncommitted = 0
        for tp in consumer.assignment():
            if tp.topic not in self.topic_types:
                continue
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            read = consumer.read_offset(tp)
            lags[(tp.topic, tp.partition)] = max(0, highwater - (0 if read is None else read + 1))
            uncommitted += max(0, highwater - (consumer.committed_offset(tp) or 0))
        self.metrics.set_lag(lags)
        self.behind = sum(lags.values()) >= self.settings.worker_flush_min
        return uncommitted

    async def watch(self, app: Any) -> None:
        """Read again from the committed offsets when unread events wait and nothing moves."""
        unread = self.update_lag(app.consumer)  # uncommitted, strictly
        busy = bool(
            self._queued_events
            or self._queue
            or app.rebalancing
            or app.in_recovery
            or not app.consumer.flow_active
        )
        if self.watchdog.should_act(time.monotonic(), unread, busy):
            logger.warning(
                "%d events wait unread and nothing was consumed for %.0f s or more: "
                "reading again from the committed offsets",
                unread,
                self.watchdog.stall_after_s,
            )
            self.metrics.stall_seeks.inc()
            # Not busy, so no rebalance or recovery runs: a hold still on was left behind.
            if isinstance(app.consumer, faust_adapter.Consumer):
                app.consumer.release_held_flow()
            try:
                await asyncio.wait_for(app.consumer.perform_seek(), LAG_EVERY_S * 6)
            except Exception as exc:  # Kafka away, say: the next round tries again
                logger.warning("the seek to the committed offsets failed: %r", exc)

    async def sweep(self, now_us: int | None = None) -> int:
        """Write the rows of users whose windows changed since their last row (decay).

        A page of heads at a time from the store: a state is decoded only when its head says
        its row may have changed, and each page's rows are flushed before the next is read.
        """
        now_us = now_us if now_us is not None else time.time_ns() // 1000
        owned = self.owned()
        written = 0
        after = b""
        while True:
            page = self.records.heads(after, SWEEP_PAGE)
            if not page:
                break
            after = page[-1][0]
            result = BatchResult()
            for key, partition, head in page:
                if partition is not None and partition not in owned:
                    continue
                event_type, _, user_id = key.decode().partition("|")
                state = self.states.get((user_id, event_type))
                if state is None:
                    if not _may_change(event_type, head, now_us):
                        continue
                    state = self.load_state(user_id, event_type)
                if state.partition in owned and state.changes_by(now_us):
                    row: Row | None = state.row_at(now_us)
                    if row is not None:
                        result.rows.append(row)
                        result.dirty[(user_id, event_type)] = (state.partition, state)
            if result.rows:
                await self.flush(result)
                written += len(result.rows)
        if written:
            logger.info("sweep wrote %d rows", written)
        return written


def _state(user_id: str, event_type: str, found: Loaded | None) -> UserState:
    """A state as the store holds it (`StateRecords.load`), or a new one if it holds none."""
    if found is None:
        return UserState(user_id, event_type)  # type: ignore[arg-type]
    return UserState.restore(user_id, event_type, *found)  # type: ignore[arg-type]


def _may_change(event_type: str, head: bytes, now_us: int) -> bool:
    """Whether a stored state's row at `now_us` may differ from its last, from its head alone."""
    if not is_binary(head):
        return True  # a head of the JSON forms: decode the state to know
    _, last_row_us, last_synced_us, _, _ = decode_head(head)
    return row_may_change(event_type, last_row_us, last_synced_us, now_us)


def _fatal(reason: str) -> NoReturn:
    """Stop at once: Faust must not commit the offsets of events whose effects are unwritten."""
    logger.critical(reason, exc_info=True)
    logging.shutdown()
    os._exit(FATAL_EXIT_CODE)
