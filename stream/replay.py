"""`make replay`: recompute feature history over a time range, with the worker's own code.

Events come from the raw-event archive in Postgres (the default), a JSONL file, or Kafka topics.
They go through the same `Ingestor` and `UserState` as the stream, so the rows are the ones the
worker writes for the same events in the same order per user. To get the windows right at the
start of the range, replay reads from the longest window before it (the warm-up) and writes
only the rows whose time falls in [start, end).

Writes are idempotent: before a user's first row in the range is written, that user's rows in
the range are deleted, then the new rows are pushed through Feast's offline store (which merges
on user and time). A rerun adds nothing; a narrower rerun replaces just its range. With
`--online`, each user's latest row goes online at the end, through the push sources.

Parity (tests/integration/test_replay.py):
- Events in event-time order per user give exactly the worker's rows. Postgres and JSONL sources
  are read in event-time order (ties in arrival order), Kafka in arrival order, as the worker did.
- In any order, the final state equals the worker's and the reference computation's.
- The worker's idle-sweep rows (decay at wall-clock times) are not events: replay writes none.

A checkpoint after every chunk lets an interrupted run resume: it recomputes up to the
checkpoint without writing (computing is cheap, writing is not) and carries on from there.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import signal
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import IO

import orjson
import psycopg
from psycopg import sql

from stream import gcpolicy
from stream.catalog import EVENT_TYPES, TILE, VIEWS, Window, view
from stream.derive import parse_time
from stream.events import Event, EventValidationError, decode, to_us
from stream.ingest import Ingestor, Message, latest_per_user
from stream.settings import Settings
from stream.state import Row
from stream.writer import exit_with_parent, pack, spawn_one, unpack

logger = logging.getLogger(__name__)

# Enough history before the range for every window at its start.
WARM_UP = Window.D30.duration + TILE  # type: ignore[operator]
CHUNK_EVENTS = 20_000


class ReplayError(Exception):
    """A bad range, an unreadable source, or a store that cannot be reached."""


@dataclass(frozen=True)
class ReplayRange:
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        for name, moment in (("start", self.start), ("end", self.end)):
            if moment.tzinfo is None:
                raise ReplayError(f"{name} {moment.isoformat()} has no time zone; add one (Z)")
        if self.start >= self.end:
            raise ReplayError(
                f"empty range: start {self.start.isoformat()} is not before end "
                f"{self.end.isoformat()}"
            )

    @property
    def read_from(self) -> datetime:
        return self.start - WARM_UP

    def covers(self, row_us: int) -> bool:
        return to_us(self.start) <= row_us < to_us(self.end)


def parse_moment(text: str) -> datetime:
    """An ISO date or time; a bare date is midnight UTC, a time without zone is refused."""
    try:
        moment = parse_time(text)
    except ValueError:
        raise ReplayError(f"{text!r} is not an ISO date or time (e.g. 2026-11-01T00:00Z)") from None
    if len(text) == 10:  # a date
        moment = moment.replace(tzinfo=UTC)
    return moment


# --- sources: each yields chunks of (event, message) in the order they must be applied -------


Chunk = list[tuple[Event, Message]]


@dataclass
class SourceStats:
    total: int | None = None  # events to read, when the source can say
    invalid: int = 0


def archive_source(settings: Settings, span: ReplayRange, stats: SourceStats) -> Iterator[Chunk]:
    """The raw-event archive, in event-time order; ties in the order the worker received them."""
    where = "event_timestamp >= %s AND event_timestamp < %s"
    args = (span.read_from, span.end)
    try:
        conn = psycopg.connect(
            settings.postgres_conninfo(), options=f"-c search_path={settings.postgres_schema}"
        )
    except psycopg.OperationalError as exc:
        pg = settings.postgres
        raise ReplayError(
            f"cannot reach Postgres at {pg.host}:{pg.port}/{pg.database}: {exc}"
        ) from exc
    with conn:
        total = conn.execute(f"SELECT count(*) FROM raw_events WHERE {where}", args).fetchone()  # noqa: S608
        stats.total = int(total[0]) if total else 0
        # A named (server-side) cursor streams the rows: memory does not grow with the range.
        with conn.cursor(name="aurora_replay") as cur:
            cur.itersize = CHUNK_EVENTS
            cur.execute(
                "SELECT event::text, source_topic, source_partition, source_offset "  # noqa: S608
                f"FROM raw_events WHERE {where} "
                "ORDER BY event_timestamp, source_topic, source_partition, source_offset, event_id",
                args,
            )
            while rows := cur.fetchmany(CHUNK_EVENTS):
                yield [
                    (orjson.loads(text), Message(topic or "", part or 0, offset or 0, None, b""))
                    for text, topic, part, offset in rows
                ]


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


# --- progress ---------------------------------------------------------------------------------


class Progress:
    """A bar with rate and ETA on a terminal; a plain line every few seconds otherwise."""

    def __init__(self, total: int | None, out: IO[str] = sys.stderr, every_s: float = 5.0) -> None:
        self.total, self.out, self.every_s = total, out, every_s
        self.done = 0
        self.began = self.last = time.monotonic()
        self.tty = out.isatty()

    def update(self, n: int, force: bool = False) -> None:
        self.done += n
        now = time.monotonic()
        if not force and now - self.last < (0.2 if self.tty else self.every_s):
            return
        self.last = now
        elapsed = max(now - self.began, 1e-9)
        rate = self.done / elapsed
        text = f"replay {self.done:,}"
        if self.total:
            share = min(1.0, self.done / self.total)
            eta = (self.total - self.done) / rate if rate else float("inf")
            bar = ("#" * int(share * 30)).ljust(30)
            text += f"/{self.total:,} [{bar}] {share:4.0%} {rate:,.0f} ev/s ETA {eta:,.0f}s"
        else:
            text += f" events {rate:,.0f} ev/s"
        if self.tty:
            self.out.write("\r" + text)
        else:
            self.out.write(text + "\n")
        self.out.flush()

    def close(self) -> None:
        self.update(0, force=True)
        if self.tty:
            self.out.write("\n")


# --- writing ----------------------------------------------------------------------------------


@dataclass
class Checkpoint:
    """How far a run got: events applied and written, and which users' ranges were cleared."""

    path: Path
    key: str
    events_done: int = 0
    cleared: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, key: str) -> Checkpoint:
        if path.exists():
            data = orjson.loads(path.read_bytes())
            if data.get("key") == key:
                cleared = {v: set(users) for v, users in data["cleared"].items()}
                return cls(path, key, int(data["events_done"]), cleared)
        return cls(path, key)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "key": self.key,
            "events_done": self.events_done,
            "cleared": {v: sorted(u) for v, u in self.cleared.items()},
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(data))
        tmp.replace(self.path)  # atomic: an interruption leaves the old or the new checkpoint

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


class OfflineWriter:
    """Rows of the range into the snapshot tables: clear users' ranges as told, then push.

    It runs in a process of its own (`WriterProcess`), as the worker's writer does: Feast's row
    conversion and the Postgres writes then take the second core while this one computes.
    """

    def __init__(self, settings: Settings, span: ReplayRange) -> None:
        from stream.feast_env import open_store
        from stream.push import Pusher

        self.settings, self.span = settings, span
        self.pusher = Pusher(open_store(settings))

    def write(self, rows: list[Row], clear: dict[str, list[str]]) -> int:
        from stream.sinks import by_view, with_retry

        for view_name, users in clear.items():
            with_retry(partial(self._clear, view_name, users), "clearing the range")
        for view_name, view_rows in by_view(rows).items():
            source = view(view_name).push_source
            with_retry(partial(self.pusher.offline, source, view_rows), "offline push")
        return len(rows)

    def _clear(self, view_name: str, users: list[str]) -> None:
        table = view(view_name).table
        with psycopg.connect(
            self.settings.postgres_conninfo(),
            options=f"-c search_path={self.settings.postgres_schema}",
        ) as conn:
            conn.execute(
                sql.SQL(
                    "DELETE FROM {} WHERE user_id = ANY(%s) "
                    "AND event_timestamp >= %s AND event_timestamp < %s"
                ).format(sql.Identifier(table)),
                (users, self.span.start, self.span.end),
            )

    def online(self, rows: list[Row]) -> int:
        from stream.sinks import by_view, with_retry

        for view_name, view_rows in by_view(latest_per_user(rows)).items():
            source = view(view_name).push_source
            with_retry(partial(self.pusher.online, source, view_name, view_rows), "online push")
        return len(rows)


_offline_writer: OfflineWriter | None = None


def _start_writer(settings: Settings, span: ReplayRange) -> None:
    global _offline_writer
    # Ctrl-C reaches the whole process group: the write in flight finishes, and the parent
    # checkpoints it before it stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_with_parent()
    _offline_writer = OfflineWriter(settings, span)
    gcpolicy.settle()


def _ready() -> bool:
    return _offline_writer is not None


def _write(payload: bytes, clear: dict[str, list[str]]) -> int:
    assert _offline_writer is not None
    return _offline_writer.write(unpack(payload)[1], clear)


def _write_online(payload: bytes) -> int:
    assert _offline_writer is not None
    return _offline_writer.online(unpack(payload)[1])


class WriterProcess:
    """One chunk's writes in flight while the next chunk is computed; the checkpoint follows them.

    A user's range is cleared once, before that user's first row of the run: `claimed` holds
    the users whose clearing was sent, the checkpoint only those whose write has completed, so a
    resumed run clears again what an interrupted one may not have.
    """

    def __init__(self, settings: Settings, span: ReplayRange, checkpoint: Checkpoint) -> None:
        self.checkpoint = checkpoint
        self.claimed = {v: set(users) for v, users in checkpoint.cleared.items()}
        # Started now: Feast's import (seconds) overlaps the first read and computation.
        self.pool = spawn_one(_start_writer, (settings, span), _ready)
        self.rows_written = 0
        self._in_flight: tuple[Future[int], int, dict[str, list[str]]] | None = None

    def write(self, rows: list[Row], events_done: int) -> None:
        clear: dict[str, list[str]] = {}
        for row in rows:
            claimed = self.claimed.setdefault(row.view, set())
            if row.user_id not in claimed:
                claimed.add(row.user_id)
                clear.setdefault(row.view, []).append(row.user_id)
        self.wait()
        future = self.pool.submit(_write, pack((), rows), clear)
        self._in_flight = (future, events_done, clear)

    def wait(self) -> None:
        """Let the write in flight finish, then checkpoint it."""
        if self._in_flight is None:
            return
        future, events_done, clear = self._in_flight
        self._in_flight = None
        self.rows_written += future.result()
        for view_name, users in clear.items():
            self.checkpoint.cleared.setdefault(view_name, set()).update(users)
        self.checkpoint.events_done = events_done
        self.checkpoint.save()

    def online(self, rows: list[Row]) -> int:
        self.wait()
        return self.pool.submit(_write_online, pack((), rows)).result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


# --- the run ----------------------------------------------------------------------------------


@dataclass
class ReplayReport:
    events: int = 0
    applied: int = 0
    duplicates: int = 0
    invalid: int = 0
    rows_written: int = 0
    rows_online: int = 0
    users: int = 0
    seconds: float = 0.0
    resumed_from: int = 0

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def replay(
    settings: Settings,
    span: ReplayRange,
    source: Callable[[SourceStats], Iterator[Chunk]],
    source_name: str,
    *,
    online: bool = False,
    fresh: bool = False,
    progress_out: IO[str] = sys.stderr,
    stop_after_chunks: int | None = None,
) -> ReplayReport:
    """Recompute [start, end) from `source` and write it; see the module docstring."""
    began = time.monotonic()
    key = hashlib.sha256(
        f"{source_name}|{span.start.isoformat()}|{span.end.isoformat()}|{settings.feast_project}"
        .encode()
    ).hexdigest()[:16]  # fmt: skip
    checkpoint = Checkpoint.load(settings.stack_dir / "replay" / f"{key}.json", key)
    if fresh:
        checkpoint = Checkpoint(checkpoint.path, key)
    resume_at = checkpoint.events_done
    writer = WriterProcess(settings, span, checkpoint)
    ingestor, states = Ingestor.in_memory()
    stats = SourceStats()
    report = ReplayReport(resumed_from=resume_at)
    progress: Progress | None = None
    seen = 0
    try:
        for number, chunk in enumerate(source(stats), start=1):
            if progress is None:
                progress = Progress(stats.total, progress_out)
                if resume_at:
                    progress_out.write(f"resuming after {resume_at:,} events (checkpoint)\n")
            first = seen
            seen += len(chunk)
            # Rows of the part before the checkpoint were written by the interrupted run: that
            # part is applied on its own, its rows dropped.
            skip = min(len(chunk), max(0, resume_at - first))
            results = [ingestor.process_valid(chunk[:skip]), ingestor.process_valid(chunk[skip:])]
            for result in results:
                report.applied += result.counts["applied"]
                report.duplicates += result.counts["duplicate"]
            if seen > resume_at:
                writer.write([r for r in results[1].rows if span.covers(r.row_us)], seen)
            progress.update(len(chunk))
            if stop_after_chunks is not None and number >= stop_after_chunks:
                raise KeyboardInterrupt  # tests: an interruption at a known point
        writer.wait()
        if progress is not None:
            progress.close()
        report.events = seen
        report.invalid = stats.invalid
        report.rows_written = writer.rows_written
        report.users = len({user for user, _ in states})
        if online:
            at_us = min(to_us(span.end), time.time_ns() // 1000)
            final = [
                r for s in states.values() if (r := s.row_at(max(at_us, (s.last_row_us or 0) + 1)))
            ]
            report.rows_online = writer.online(final)
    except BaseException:
        # Interrupted or failed: checkpoint the write in flight if it completes.
        with contextlib.suppress(Exception):
            writer.wait()
        raise
    finally:
        writer.close()
    checkpoint.remove()
    report.seconds = time.monotonic() - began
    return report


def default_range(now: datetime | None = None) -> ReplayRange:
    now = now or datetime.now(UTC)
    return ReplayRange(now - timedelta(days=30), now)


def summary(report: ReplayReport) -> str:
    views = ", ".join(v.name for v in VIEWS)
    return (
        f"replayed {report.events:,} events ({report.applied:,} applied, {report.duplicates:,} "
        f"duplicates, {report.invalid:,} invalid skipped) for {report.users:,} user states in "
        f"{report.seconds:.1f}s ({report.rate:,.0f} events/s); wrote {report.rows_written:,} "
        f"offline rows"
        + (f" and {report.rows_online:,} online rows" if report.rows_online else "")
        + f" to {views}"
    )
