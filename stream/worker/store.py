"""The worker's local state store: the user-state table on disk, with its changelog offsets.

A Faust store (`AURORA_WORKER_STORE=aurora://`) in one SQLite database per worker slot
(stream/worker/slots.py). Each record of the changelog is a row; with it, per changelog
partition, the offset of the last record the rows hold. Invariant: the rows and the offsets
change in one transaction, so after any crash the database is the changelog up to its stored
offsets, and Faust's recovery reads only the records after them (the tail), not the whole topic.
A state's records share their first key column, so one range read loads a whole state.

The changelog stays the source of truth: a lost or new disk is rebuilt from it.
Why SQLite, and the figures: docs/decisions/0021-compact-state.md.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final, Protocol

from faust.stores.base import SerializedStore
from faust.types import TP, EventT

from stream.core.records import Record

# A flush's state records, each state's with its partition (stream/worker/changelog.py).
Changes = list[tuple[int, list[Record]]]

logger = logging.getLogger(__name__)

HEAD: Final = -1  # the chunk number of a state's head row
_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS records (state BLOB NOT NULL, chunk INTEGER NOT NULL, "
    "partition INTEGER NOT NULL, value BLOB NOT NULL, PRIMARY KEY (state, chunk)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS offsets (topic TEXT NOT NULL, partition INTEGER NOT NULL, "
    "offset INTEGER NOT NULL, PRIMARY KEY (topic, partition)) WITHOUT ROWID",
)


def split_key(key: bytes) -> tuple[bytes, int]:
    """(state, chunk) of a record key: `type|user` is a head (HEAD), `type#week|user` a week's
    chunk (the week), `type@day|user` a day's record of the JSON forms (-2 - day)."""
    first, bar, user = key.partition(b"|")
    kind, sep, number = first.partition(b"#")
    if sep:
        return kind + bar + user, int(number)
    kind, sep, number = first.partition(b"@")
    if sep:
        return kind + bar + user, -2 - int(number)
    return key, HEAD


def join_key(state: bytes, chunk: int) -> bytes:
    if chunk == HEAD:
        return state
    kind, bar, user = state.partition(b"|")
    if chunk < HEAD:
        return b"%b@%d%b%b" % (kind, -2 - chunk, bar, user)
    return b"%b#%d%b%b" % (kind, chunk, bar, user)


class Database:
    """The SQLite file: a connection for writes (one writer at a time) and one for reads.

    In WAL mode a reader sees the last committed transaction while a write is under way, so
    the worker's event loop reads states while a thread writes the last flush.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._write_lock = threading.Lock()
        self._writer = self._connect()
        self._reader = self._connect()
        with self._write_lock:
            for statement in _SCHEMA:
                self._writer.execute(statement)
            self._writer.commit()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        # A commit survives the process's death (SIGKILL); after a power cut the database may
        # be a few transactions older, and its offsets with it: the tail read covers that.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA cache_size=-16384")  # 16 MiB of pages; the rest is the OS page cache
        return conn

    def write(
        self,
        puts: Iterable[tuple[bytes, int, int, bytes]],
        deletes: Iterable[tuple[bytes, int]],
        offsets: Mapping[tuple[str, int], int],
    ) -> None:
        """Rows in, rows out, and the offsets they reach, in one transaction."""
        with self._write_lock:
            conn = self._writer
            conn.execute("BEGIN")
            try:
                conn.executemany(
                    "INSERT OR REPLACE INTO records (state, chunk, partition, value) "
                    "VALUES (?, ?, ?, ?)",
                    puts,
                )
                conn.executemany("DELETE FROM records WHERE state = ? AND chunk = ?", deletes)
                conn.executemany(
                    "INSERT INTO offsets (topic, partition, offset) VALUES (?, ?, ?) "
                    "ON CONFLICT (topic, partition) DO UPDATE SET offset = "
                    "max(offset, excluded.offset)",
                    [(topic, p, o) for (topic, p), o in offsets.items()],
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def state(self, state: bytes) -> dict[int, bytes]:
        """chunk -> value of every row of one state (the head at HEAD)."""
        rows = self._reader.execute(
            "SELECT chunk, value FROM records WHERE state = ?", (state,)
        ).fetchall()
        return dict(rows)

    def get(self, state: bytes, chunk: int) -> bytes | None:
        row = self._reader.execute(
            "SELECT value FROM records WHERE state = ? AND chunk = ?", (state, chunk)
        ).fetchone()
        return None if row is None else bytes(row[0])

    def heads(self, after: bytes, limit: int) -> list[tuple[bytes, int]]:
        """Up to `limit` (state, partition) of heads past `after`, in key order: a page at a
        time, so no read transaction stays open for the whole walk."""
        rows = self._reader.execute(
            "SELECT state, partition FROM records WHERE state > ? AND chunk = ? "
            "ORDER BY state LIMIT ?",
            (after, HEAD, limit),
        ).fetchall()
        return [(bytes(state), partition) for state, partition in rows]

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        for state, chunk, value in self._reader.execute("SELECT state, chunk, value FROM records"):
            yield join_key(bytes(state), chunk), bytes(value)

    def count(self) -> int:
        row = self._reader.execute("SELECT count(*) FROM records").fetchone()
        return int(row[0])

    def offset(self, topic: str, partition: int) -> int | None:
        row = self._reader.execute(
            "SELECT offset FROM offsets WHERE topic = ? AND partition = ?", (topic, partition)
        ).fetchone()
        return None if row is None else int(row[0])

    def clear(self) -> None:
        with self._write_lock:
            self._writer.execute("DELETE FROM records")
            self._writer.execute("DELETE FROM offsets")

    def close(self) -> None:
        self._reader.close()
        self._writer.close()


class Store(SerializedStore[bytes, bytes]):
    """Faust's store interface over `Database`; the worker writes flushes with `write_flush`.

    `persisted_offset` is what Faust's recovery starts from: it reads the changelog from the
    next offset to the end and hands the records to `apply_changelog_batch`.
    """

    def __init__(self, url: Any, app: Any, table: Any, **kwargs: Any) -> None:
        super().__init__(url, app, table, **kwargs)
        directory = state_directory(app)
        self.db = Database(directory / f"{table.name}.sqlite")
        # Its size, not its rows: a count reads the whole table (seconds at a million users).
        logger.info("state store %s: %.0f MB", self.db.path, self.db.path.stat().st_size / 1e6)

    # --- what the worker calls -----------------------------------------------------------------

    def write_flush(self, topic: str, changes: Changes, last: Mapping[int, int]) -> None:
        """A flush's state records, as the changelog now holds them up to `last[partition]`."""
        puts: list[tuple[bytes, int, int, bytes]] = []
        deletes: list[tuple[bytes, int]] = []
        for partition, records in changes:
            for key, value in records:
                state, chunk = split_key(key)
                if value is None:
                    deletes.append((state, chunk))
                else:
                    puts.append((state, chunk, partition, value))
        self.db.write(puts, deletes, {(topic, p): o for p, o in last.items()})

    def load(self, head_key: bytes) -> tuple[bytes, Callable[[bytes], bytes | None]] | None:
        """A state's head and a reader of its chunks, from one range read; None if absent."""
        rows = self.db.state(head_key)
        head = rows.pop(HEAD, None)
        if head is None:
            return None
        by_key = {join_key(head_key, chunk): bytes(value) for chunk, value in rows.items()}
        return bytes(head), by_key.get

    # --- Faust's store interface ----------------------------------------------------------------

    def persisted_offset(self, tp: TP) -> int | None:
        return self.db.offset(tp.topic, tp.partition)

    def set_persisted_offset(self, tp: TP, offset: int) -> None:
        self.db.write((), (), {(tp.topic, tp.partition): offset})

    def apply_changelog_batch(
        self,
        batch: Iterable[EventT[Any]],
        to_key: Callable[[Any], Any],
        to_value: Callable[[Any], Any],
    ) -> None:
        """Changelog records read by Faust's recovery: rows and offsets in one transaction."""
        puts: list[tuple[bytes, int, int, bytes]] = []
        deletes: list[tuple[bytes, int]] = []
        offsets: dict[tuple[str, int], int] = {}
        for event in batch:
            message = event.message
            state, chunk = split_key(bytes(message.key or b""))
            if message.value is None:
                deletes.append((state, chunk))
            else:
                puts.append((state, chunk, message.partition, message.value))
            where = (message.topic, message.partition)
            offsets[where] = max(message.offset, offsets.get(where, -1))
        self.db.write(puts, deletes, offsets)

    def _get(self, key: bytes) -> bytes | None:
        return self.db.get(*split_key(key))

    def _set(self, key: bytes, value: bytes | None) -> None:
        raise NotImplementedError("the worker writes whole flushes (write_flush)")

    def _del(self, key: bytes) -> None:
        raise NotImplementedError("the worker writes whole flushes (write_flush)")

    def _iterkeys(self) -> Iterator[bytes]:
        for key, _ in self.db.items():
            yield key

    def _itervalues(self) -> Iterator[bytes]:
        for _, value in self.db.items():
            yield value

    def _iteritems(self) -> Iterator[tuple[bytes, bytes]]:
        return self.db.items()

    def _size(self) -> int:
        return self.db.count()

    def _contains(self, key: bytes) -> bool:
        return self._get(key) is not None

    def _clear(self) -> None:
        self.db.clear()

    def reset_state(self) -> None:
        self.db.clear()

    async def on_rebalance(
        self,
        assigned: set[TP],
        revoked: set[TP],
        newly_assigned: set[TP],
        generation_id: int = 0,
    ) -> None:
        """Nothing moves: the database holds every partition this slot ever owned, and a
        partition owned again is brought up to date by its tail."""

    async def backup_partition(
        self, tp: TP | int, flush: bool = True, purge: bool = False, keep: int = 1
    ) -> None:
        """Nothing to back up: the changelog is the store's backup."""

    def restore_backup(self, tp: TP | int, latest: bool = True, backup_id: int = 0) -> None:
        raise NotImplementedError("the local store is rebuilt from the changelog, not backups")

    async def on_stop(self) -> None:
        self.db.close()


def state_directory(app: Any) -> Path:
    """Where this worker slot keeps its store (set by stream/worker/app.py)."""
    directory: Path = app.aurora_state_dir
    return directory


class StateRecords(Protocol):
    """What the runtime needs of the table's store, whichever it is."""

    def load(self, head_key: bytes) -> tuple[bytes, Callable[[bytes], bytes | None]] | None:
        """A state's head and a reader of its chunks; None when the state is not there."""

    def head(self, head_key: bytes) -> bytes | None:
        """A state's head alone (the sweep decides from it whether to decode the state)."""

    def write(self, topic: str, changes: Changes, last: Mapping[int, int]) -> None:
        """A flush's records, which the changelog holds up to `last[partition]`."""

    def heads(self, after: bytes, limit: int) -> list[tuple[bytes, int | None]]:
        """Up to `limit` (head key, partition or None) past `after`, in key order."""


class DiskRecords:
    """The local store's records (`aurora://`)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def load(self, head_key: bytes) -> tuple[bytes, Callable[[bytes], bytes | None]] | None:
        return self.store.load(head_key)

    def head(self, head_key: bytes) -> bytes | None:
        return self.store.db.get(head_key, HEAD)

    def write(self, topic: str, changes: Changes, last: Mapping[int, int]) -> None:
        self.store.write_flush(topic, changes, last)

    def heads(self, after: bytes, limit: int) -> list[tuple[bytes, int | None]]:
        return [(state, partition) for state, partition in self.store.db.heads(after, limit)]


class MemoryRecords:
    """Faust's `memory://` store: every record in a dict, rebuilt from the whole changelog."""

    def __init__(self, data: Any) -> None:
        self.data = data
        self._heads: list[bytes] = []

    def load(self, head_key: bytes) -> tuple[bytes, Callable[[bytes], bytes | None]] | None:
        head = self.data.get(head_key)
        return None if head is None else (head, self.data.get)

    def head(self, head_key: bytes) -> bytes | None:
        head: bytes | None = self.data.get(head_key)
        return head

    def write(self, topic: str, changes: Changes, last: Mapping[int, int]) -> None:
        data = self.data
        for _, records in changes:
            for key, value in records:
                if value is not None:
                    data[key] = value
                elif key in data:
                    del data[key]

    def heads(self, after: bytes, limit: int) -> list[tuple[bytes, int | None]]:
        if not after:  # a new walk: the heads as they are now, sorted once for all its pages
            self._heads = sorted(k for k in map(bytes, self.data) if split_key(k)[1] == HEAD)
        start = bisect_right(self._heads, after)
        return [(key, None) for key in self._heads[start : start + limit]]


def state_records(data: Any) -> StateRecords:
    return DiskRecords(data) if isinstance(data, Store) else MemoryRecords(data)
