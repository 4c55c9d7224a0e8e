"""Faust's aiokafka consumer, made to re-read every record it fetched and did not deliver.

aiokafka advances a partition's position as soon as Faust takes the fetched records. Faust's
`Consumer.getmany` then drops some of them without telling aiokafka: the records of a partition
paused or revoked in the meantime, and the rest of a batch when a rebalance starts or the
generation changes. Faust counts on seeking back to the committed offsets after the next
rebalance, but aiokafka's `seek_to_committed` skips a partition that has no committed offset.
The dropped records were then never read again: a worker that took over a partition nobody had
committed on said "Worker ready" and consumed nothing more (the stall of issue #5), and the
changelog recovery could wait forever for records it had already skipped.

So this consumer
- seeks each partition back to its first fetched-but-undelivered record, unless something else
  has moved the position since (a recovery's own seek wins),
- seeks a partition without a committed offset to its beginning where Faust seeks to committed
  offsets, as `consumer_auto_offset_reset="earliest"` means,
- counts a message as delivered only once its delivery finished: Faust cancels a delivery that
  waits (on flow control, say) when a rebalance suspends the flow, and reads on past it,
- holds deliveries while Faust's recovery resumes the stream partitions and seeks them: Faust
  empties every stream buffer when it then resumes flow control, and the events delivered in
  between were lost with their read offsets already past them (the rare loss after a takeover),
- after a seek to the committed offsets, delivers nothing more of a batch fetched before it,
  drops a delivery still waiting, and keeps the read offsets the seek set, so the records it
  sends again come in order and none is skipped as read, and
- never commits past an offset that was not acknowledged. Faust's `_new_offset` lets the first
  acknowledged offset sit one past the committed one (`min(acked) - committed > 1`), but the
  committed offset is the next one to read: a lost record right after it was committed over, and
  the loss was final. Held back instead, the commit leaves the events uncommitted, which the
  next seek or the stall watchdog reads again.
Reading again is safe: every effect of an event is idempotent.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping
from typing import Any, cast

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message
from mode.services import WaitArgT, WaitResults

from stream.stepping import first_step

logger = logging.getLogger(__name__)

# tp -> (the position right after the fetched records, the first undelivered offset)
Rewinds = dict[Any, tuple[int, int]]


def undelivered(fetched: Mapping[Any, list[Any]], delivered: Mapping[Any, list[int]]) -> Rewinds:
    """Per partition, where its position is now and where it must go back to (pure)."""
    rewinds: Rewinds = {}
    for tp, records in fetched.items():
        if not records:
            continue
        offsets = delivered.get(tp, [])
        if len(offsets) == len(records):
            continue
        given = set(offsets)
        first = min(r.offset for r in records if r.offset not in given)
        rewinds[tp] = (records[-1].offset + 1, first)
    return rewinds


def head_missing(committed: int | None, acked: list[int], in_gap: bool) -> bool:
    """True when the next offset to commit from was not acknowledged (and is no known gap)."""
    return committed is not None and bool(acked) and min(acked) > committed and not in_gap


class Consumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer; every record it fetches is delivered or fetched again."""

    _fetched: Mapping[Any, list[Any]] | None = None
    _cut_short = False  # the last delivery was cancelled before it finished
    _seeks = 0  # seeks to the committed offsets so far
    _seek_read: Mapping[Any, int | None] = {}  # the read offsets the last such seek set
    _seeked: asyncio.Future[None] | None = None  # resolved by the next such seek
    _holding = False  # flow control suspended by resume_partitions, for Faust to resume

    async def _wait_next_records(self, timeout: float) -> tuple[Any, Any]:
        records, active = await super()._wait_next_records(timeout)
        self._fetched = records
        return records, active

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        self._fetched = None
        delivered: defaultdict[Any, list[int]] = defaultdict(list)
        seeks = self._seeks
        batch = cast(AsyncGenerator[tuple[TP, Message], None], super().getmany(timeout))
        async for tp, message in batch:
            if self._seeks != seeks:
                # The rest of this batch may predate the seek: it is not delivered, and the
                # rewind below leaves each partition where the seek put it, or sends it back.
                await batch.aclose()
                break
            self._cut_short = False
            yield tp, message
            if self._seeks != seeks and tp in self._seek_read:
                # The seek came while this message was being delivered, and Faust then marked
                # it read over the read offset the seek had set: the records the seek sends
                # again would be skipped as read.
                self._read_offset[tp] = self._seek_read[tp]
            if not self._cut_short:
                delivered[tp].append(message.offset)
        # Not reached when the generator is closed early (the worker is stopping).
        fetched, self._fetched = self._fetched, None
        if fetched and not self.should_stop:
            rewinds = undelivered(fetched, delivered)
            if rewinds:
                await self._rewind(rewinds)

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
        # Runs on the consumer thread's loop, with no await between the check and the seek:
        # a position that moved since the fetch (a seek of Faust's recovery) is left alone.
        consumer = self._thread._ensure_consumer()
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

    async def wait_first(self, *coros: WaitArgT, timeout: Any = None) -> WaitResults:
        """Faust's per-message race of a delivery against the suspend event, without tasks
        for a delivery that does not wait (stream/stepping.py)."""
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


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer
