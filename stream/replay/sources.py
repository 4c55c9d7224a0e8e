"""Where replay reads events: the raw-event archive, a JSONL file, or the Kafka topics.

Each source yields chunks of (event, message) in the order they must be applied: the archive
and JSONL in event-time order (ties in arrival order), Kafka in arrival order, as the worker
read it.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import orjson
import psycopg

from stream.catalog import EVENT_TYPES
from stream.core.events import Event, decode, to_us
from stream.core.observe import parse_time
from stream.core.records import Message
from stream.errors import EventValidationError, ReplayError
from stream.replay.shard import SQL_SHARD, Shard
from stream.replay.span import ReplayRange
from stream.settings import Settings

CHUNK_EVENTS: Final = 20_000
Chunk = list[tuple[Event, Message]]
# The message every archived event is replayed with. The archive keeps each event's Kafka origin
# and its query orders ties by it; the aggregation reads a message for nothing but the changelog
# partition of the state it changed, which replay has none of. One shared message instead of one
# made per event: a tenth of replay's per-event work in its main process
# (docs/decisions/0027-replay-per-event-costs.md).
ARCHIVED: Final = Message("raw_events", 0, 0, None, b"")


@dataclass
class SourceStats:
    total: int | None = None  # events to read, when the source can say
    invalid: int = 0


def archive_source(
    settings: Settings,
    span: ReplayRange,
    stats: SourceStats,
    shard: Shard | None = None,
    count: bool = True,
) -> Iterator[Chunk]:
    """The raw-event archive, in event-time order; ties in the order the worker received them.

    With a shard, only its users' events: Postgres computes the shard's hash
    (stream/replay/shard.py), so each shard reads and decodes its own users alone. `count=False`
    leaves `stats.total` unknown: the shards of `--processes N` leave the count to their parent,
    which makes it once for all of them (`archive_count`) without the hash. The next chunk is
    read while the caller computes the last one (`read_ahead`).
    """
    where, args = _range(span, shard)
    with _connect(settings) as conn:
        if count:
            stats.total = _count(conn, where, args)
        # A named (server-side) cursor streams the rows: memory does not grow with the range.
        with conn.cursor(name="aurora_replay") as cur:
            cur.itersize = CHUNK_EVENTS
            cur.execute(
                f"SELECT event::text FROM raw_events WHERE {where} "  # noqa: S608
                "ORDER BY event_timestamp, source_topic, source_partition, source_offset, event_id",
                args,
            )

            def chunks() -> Iterator[Chunk]:
                while rows := cur.fetchmany(CHUNK_EVENTS):
                    yield [(orjson.loads(text), ARCHIVED) for (text,) in rows]

            yield from read_ahead(chunks())


def archive_count(settings: Settings, span: ReplayRange) -> int:
    """The archived events a replay of the range reads, for all shards at once."""
    with _connect(settings) as conn:
        return _count(conn, *_range(span, None))


def _count(conn: psycopg.Connection[tuple[Any, ...]], where: str, args: tuple[object, ...]) -> int:
    total = conn.execute(f"SELECT count(*) FROM raw_events WHERE {where}", args).fetchone()  # noqa: S608
    return int(total[0]) if total else 0


def _range(span: ReplayRange, shard: Shard | None) -> tuple[str, tuple[object, ...]]:
    where = "event_timestamp >= %s AND event_timestamp < %s"
    args: tuple[object, ...] = (span.read_from, span.end)
    if shard is not None and shard.count > 1:
        where += f" AND {SQL_SHARD} = %s"
        args = (*args, shard.count, shard.index)
    return where, args


def _connect(settings: Settings) -> psycopg.Connection[tuple[Any, ...]]:
    try:
        return psycopg.connect(
            settings.postgres_conninfo(), options=f"-c search_path={settings.postgres_schema}"
        )
    except psycopg.OperationalError as exc:
        pg = settings.postgres
        raise ReplayError(
            f"cannot reach Postgres at {pg.host}:{pg.port}/{pg.database}: {exc}"
        ) from exc


_DONE: Final = object()


def read_ahead(chunks: Iterator[Chunk], depth: int = 2) -> Generator[Chunk, None, None]:
    """`chunks`, made up to `depth` ahead in a thread: Postgres prepares the next rows while the
    caller computes (the fetch waited on the server for 7% of the main process's time). Closing
    this generator stops the thread before the caller closes the cursor under it."""
    ready: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: object) -> bool:
        """Put `item` once there is room; False once the caller has stopped reading."""
        while not stop.is_set():
            with contextlib.suppress(queue.Full):
                ready.put(item, timeout=0.1)
                return True
        return False

    def read() -> None:
        try:
            for chunk in chunks:
                if not offer(chunk):
                    return
            offer(_DONE)
        except BaseException as exc:  # raised in the caller, which reads it next
            offer(exc)

    reader = threading.Thread(target=read, name="replay-read-ahead", daemon=True)
    reader.start()
    try:
        while (item := ready.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]  # a Chunk: the reader puts nothing else
    finally:
        stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                ready.get_nowait()
        reader.join()


def jsonl_source(path: Path, span: ReplayRange, stats: SourceStats) -> Iterator[Chunk]:
    """A JSONL file: one event per line, or the generator's wire records; sorted by event time.

    Invalid lines are counted and skipped. The file is sorted in memory (a stable sort, so ties
    keep the file's order); export big ranges from the archive instead.
    """
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise ReplayError(f"cannot read {path}: {exc.strerror}") from exc
    events: list[tuple[int, int, Event]] = []
    lo, hi = to_us(span.read_from), to_us(span.end)
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                event = decode(_event_bytes(line))
            except (EventValidationError, ValueError):
                stats.invalid += 1
                continue
            ts = to_us(parse_time(event["event_timestamp"]))
            if lo <= ts < hi:
                events.append((ts, number, event))
    events.sort(key=lambda item: (item[0], item[1]))
    stats.total = len(events)
    for i in range(0, len(events), CHUNK_EVENTS):
        yield [
            (event, Message(str(path), 0, number, None, b""))
            for _, number, event in events[i : i + CHUNK_EVENTS]
        ]


def _event_bytes(line: bytes) -> bytes:
    """The event of a line: the line itself, or the `value` of a generator wire record."""
    record = orjson.loads(line)
    if isinstance(record, dict) and "event_id" not in record:
        if "value" in record:
            return str(record["value"]).encode()
        if "value_b64" in record:
            import base64

            return base64.b64decode(record["value_b64"])
    return line


def kafka_source(
    settings: Settings,
    span: ReplayRange,
    stats: SourceStats,
    from_offset: int | None,
    from_time: datetime | None,
) -> Iterator[Chunk]:
    """The event topics from an offset or a time up to their ends now, in arrival order."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    topics = {settings.topic_for(t): t for t in EVENT_TYPES}
    try:
        consumer = KafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            enable_auto_commit=False,
            group_id=None,
            consumer_timeout_ms=5_000,
            max_poll_records=5_000,
            **settings.kafka_client_config(),
        )
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
    except KafkaError as exc:
        raise ReplayError(
            f"cannot reach Kafka at {settings.kafka_bootstrap_servers}: {exc}"
        ) from exc
    if not partitions:
        raise ReplayError(f"no event topics {sorted(topics)} at {settings.kafka_bootstrap_servers}")
    consumer.assign(partitions)
    ends = consumer.end_offsets(partitions)
    starts = consumer.beginning_offsets(partitions)
    if from_time is not None:
        found = consumer.offsets_for_times(
            {tp: int(from_time.timestamp() * 1000) for tp in partitions}
        )
        starts = {tp: (found[tp].offset if found[tp] else ends[tp]) for tp in partitions}
    elif from_offset is not None:
        starts = {tp: max(starts[tp], from_offset) for tp in partitions}
    for tp in partitions:
        consumer.seek(tp, starts[tp])
    stats.total = sum(max(0, ends[tp] - starts[tp]) for tp in partitions)
    left = {tp for tp in partitions if starts[tp] < ends[tp]}
    try:
        while left:
            polled = consumer.poll(timeout_ms=2_000, max_records=CHUNK_EVENTS)
            if not polled:
                continue
            chunk: Chunk = []
            for tp, records in polled.items():
                for r in records:
                    if r.offset >= ends[tp]:
                        continue
                    message = Message(r.topic, r.partition, r.offset, r.key, r.value or b"")
                    try:
                        event = decode(message.value)
                    except EventValidationError:
                        stats.invalid += 1
                        continue
                    if topics.get(r.topic) == event["event_type"]:
                        chunk.append((event, message))
                    else:
                        stats.invalid += 1
                if consumer.position(tp) >= ends[tp]:
                    left.discard(tp)
            yield chunk
    finally:
        consumer.close()
