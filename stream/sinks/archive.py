"""The raw-event archive: every valid event, as the JSON it arrived in, in `raw_events`.

A batch is COPYed straight in: the worker skips the ids its states hold, so a batch almost never
holds an archived event. When one does (a batch replayed after a crash, a too-late event sent
twice), the key refuses the COPY and the batch goes again through a temporary table that skips
the ids already there (docs/decisions/0007-copy-straight-in.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from stream.core.records import ArchiveRow
from stream.sinks.base import Flush


class ArchiveSink:
    """Valid raw events into `raw_events`, keyed by (event_timestamp, event_id)."""

    name = "archive"

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

    def setup(self) -> None:
        self._connection()

    def write(self, flush: Flush) -> None:
        self.write_rows(flush.archive)

    def write_rows(self, rows: Sequence[ArchiveRow]) -> None:
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
        except psycopg.Error:
            # A refused batch (a value Postgres rejects) must not leave its aborted transaction
            # to fail every later write of this connection.
            if self._conn is not None and not self._conn.closed:
                self._conn.rollback()
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
                "ON CONFLICT (event_timestamp, event_id) DO NOTHING"
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
