"""The worker's writes: feature rows through Feast's push sources, raw events into the archive.

Both are synchronous (Feast's push is) and both are idempotent, so the worker runs them in a
thread and simply repeats them after a failure: offline rows merge on (user_id, event_timestamp),
Redis keeps the newest row, and the archive ignores an event_id it already holds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, TypeVar

import psycopg
import redis

from stream.catalog import view
from stream.ingest import ArchiveRow, latest_per_user
from stream.push import Pusher
from stream.state import Row

if TYPE_CHECKING:
    from feast import FeatureStore

logger = logging.getLogger(__name__)

T = TypeVar("T")

# What a retry can cure: a server restarting, a network blip, a timeout.
TRANSIENT: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,
    redis.ConnectionError,
    redis.TimeoutError,
    ConnectionError,
    TimeoutError,
)


class SinkRetryExhaustedError(Exception):
    """A write kept failing for longer than the caller allows."""


def with_retry(
    write: Callable[[], T],
    what: str,
    *,
    first_delay_s: float = 0.2,
    max_delay_s: float = 10.0,
    give_up_after_s: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[], None] | None = None,
) -> T:
    """Run `write`, backing off exponentially while it fails with a transient error."""
    delay = first_delay_s
    started = time.monotonic()
    attempt = 1
    while True:
        try:
            return write()
        except TRANSIENT as exc:
            waited = time.monotonic() - started
            if give_up_after_s is not None and waited > give_up_after_s:
                raise SinkRetryExhaustedError(f"{what} failed for {waited:.0f}s") from exc
            logger.warning(
                "%s failed (attempt %d), retrying in %.1fs: %s", what, attempt, delay, exc
            )
            if on_retry is not None:
                on_retry()
            sleep(delay)
            delay = min(max_delay_s, delay * 2)
            attempt += 1


def by_view(rows: Iterable[Row]) -> dict[str, list[Row]]:
    """Rows grouped by feature view, each group in the given order."""
    grouped: dict[str, list[Row]] = {}
    for row in rows:
        grouped.setdefault(row.view, []).append(row)
    return grouped


class FeatureSink:
    """Every row offline (the history), the newest row per user online (what models read)."""

    def __init__(self, store: FeatureStore) -> None:
        self.pusher = Pusher(store)

    def write(self, rows: list[Row]) -> None:
        grouped = by_view(rows)
        # Online first: it is what models read now; the history can follow a moment later.
        for view_name, view_rows in grouped.items():
            self.pusher.online(view(view_name).push_source, view_name, latest_per_user(view_rows))
        for view_name, view_rows in grouped.items():
            self.pusher.offline(view(view_name).push_source, view_rows)


class ArchiveSink:
    """Valid raw events into `raw_events`, keyed by event_id.

    A batch is COPYed straight into the archive: the worker skips the ids its states hold, so a
    batch almost never holds an archived event. When one does (a batch replayed after a crash, a
    too-late event sent twice), the key refuses the COPY and the batch goes again through a
    temporary table that skips the ids already there. Straight in costs Postgres about a third
    less than always merging (bench/README.md).
    """

    COLUMNS = (
        "event_id",
        "user_id",
        "event_type",
        "event_timestamp",
        "event",
        "source_topic",
        "source_partition",
        "source_offset",
        "too_late",
    )

    def __init__(self, conninfo: str, schema: str = "public") -> None:
        self.conninfo = conninfo
        self.schema = schema
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self.merged = 0  # batches that met an archived event and were merged

    def _connection(self) -> psycopg.Connection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.conninfo, options=f"-c search_path={self.schema}")
        return self._conn

    def write(self, rows: Sequence[ArchiveRow]) -> None:
        if not rows:
            return
        try:
            self._write(rows)
        except psycopg.OperationalError:
            # The connection is unusable after a server restart; the retry opens a new one.
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            raise

    def _write(self, rows: Sequence[ArchiveRow]) -> None:
        conn = self._connection()
        columns = ", ".join(self.COLUMNS)
        try:
            with conn.cursor() as cur:
                self._copy(cur, "raw_events", rows)
            conn.commit()
            return
        except psycopg.errors.UniqueViolation:
            conn.rollback()
        self.merged += 1
        with conn.cursor() as cur:
            # Spelled out, not LIKE raw_events: LIKE needs SELECT on the archive, which the
            # ingestor role does not have (migration 0004).
            cur.execute(
                "CREATE TEMP TABLE IF NOT EXISTS _archive_in (event_id uuid, user_id text, "
                "event_type text, event_timestamp timestamptz, event json, source_topic text, "
                "source_partition integer, source_offset bigint, too_late boolean) "
                "ON COMMIT DELETE ROWS"
            )
            self._copy(cur, "_archive_in", rows)
            cur.execute(
                f"INSERT INTO raw_events ({columns}) SELECT {columns} FROM _archive_in "  # noqa: S608 - fixed column list
                "ON CONFLICT (event_id) DO NOTHING"
            )
        conn.commit()

    def _copy(
        self, cur: psycopg.Cursor[tuple[object, ...]], table: str, rows: Sequence[ArchiveRow]
    ) -> None:
        with cur.copy(f"COPY {table} ({', '.join(self.COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
