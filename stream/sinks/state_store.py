"""The state records on disk: a SQLite database holding a changelog, up to known offsets.

One file per worker slot. Each changelog record is a row keyed by its state and chunk, and with
the rows, per changelog partition, the offset of the last record they hold. Invariant: rows and
offsets change in one transaction, so after any crash the file is the changelog up to its
stored offsets. The worker's Faust store (stream/worker/store.py) reads it; the writer process
(stream/sinks/writer.py) writes each flush's records to it, off the worker's event loop.
Why SQLite, and the figures: docs/decisions/0021-compact-state.md.
"""

from __future__ import annotations

import pickle
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Final

from stream.core.records import Record

# A flush's state records, each state's with its partition (stream/worker/changelog.py).
Changes = list[tuple[int, list[Record]]]

HEAD: Final = -1  # the chunk number of a state's head row
_IN_BATCH: Final = 500  # states per IN (...) read
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
    the worker's event loop reads states while the writer process writes the last flush.
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
        # The worker's process (Faust's recovery) and its writer process (flushes) both write.
        conn.execute("PRAGMA busy_timeout=60000")
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

    def states(self, states: list[bytes]) -> dict[bytes, dict[int, bytes]]:
        """`state` of many states in a few reads: state -> chunk -> value, those present."""
        found: dict[bytes, dict[int, bytes]] = {}
        for at in range(0, len(states), _IN_BATCH):
            part = states[at : at + _IN_BATCH]
            marks = ",".join("?" * len(part))
            query = f"SELECT state, chunk, value FROM records WHERE state IN ({marks})"  # noqa: S608 - marks only
            for state, chunk, value in self._reader.execute(query, part):
                found.setdefault(bytes(state), {})[chunk] = bytes(value)
        return found

    def get(self, state: bytes, chunk: int) -> bytes | None:
        row = self._reader.execute(
            "SELECT value FROM records WHERE state = ? AND chunk = ?", (state, chunk)
        ).fetchone()
        return None if row is None else bytes(row[0])

    def heads(self, after: bytes, limit: int) -> list[tuple[bytes, int, bytes]]:
        """Up to `limit` (state, partition, head) past `after`, in key order: a page at a time,
        so no read transaction stays open for the whole walk."""
        rows = self._reader.execute(
            "SELECT state, partition, value FROM records WHERE state > ? AND chunk = ? "
            "ORDER BY state LIMIT ?",
            (after, HEAD, limit),
        ).fetchall()
        return [(bytes(state), partition, bytes(head)) for state, partition, head in rows]

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


def store_rows(
    changes: Changes,
) -> tuple[list[tuple[bytes, int, int, bytes]], list[tuple[bytes, int]]]:
    """A flush's records as the database's rows: (state, chunk, partition, value) to put,
    (state, chunk) to delete."""
    puts: list[tuple[bytes, int, int, bytes]] = []
    deletes: list[tuple[bytes, int]] = []
    for partition, records in changes:
        for key, value in records:
            state, chunk = split_key(key)
            if value is None:
                deletes.append((state, chunk))
            else:
                puts.append((state, chunk, partition, value))
    return puts, deletes


def pack_flush(path: Path, topic: str, changes: Changes, last: Mapping[int, int]) -> bytes:
    """A flush's records for the writer process (pickle: the values are bytes)."""
    return pickle.dumps((str(path), topic, changes, dict(last)), protocol=pickle.HIGHEST_PROTOCOL)


_open: dict[str, Database] = {}


def write_flush(payload: bytes) -> None:
    """Write a packed flush's records and offsets (in the writer process)."""
    path, topic, changes, last = pickle.loads(payload)  # noqa: S301 - our own process's bytes
    db = _open.get(path)
    if db is None:
        db = _open[path] = Database(Path(path))
    puts, deletes = store_rows(changes)
    db.write(puts, deletes, {(topic, p): o for p, o in last.items()})
