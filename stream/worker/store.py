"""The worker's user-state table: Faust's store on the local state database, or in memory.

`aurora://` (`Store`) keeps the table in the slot's SQLite database (stream/sinks/state_store.py,
stream/worker/slots.py): Faust's recovery starts from the database's offsets, so it reads only
the changelog's tail, and a state's records load in one range read. `memory://` keeps Faust's
dict. `StateRecords` is what the runtime needs of either. The changelog stays the source of
truth: a lost or new disk is rebuilt from it (docs/decisions/0021-compact-state.md).
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from faust.stores.base import SerializedStore
from faust.types import TP, EventT

from stream.sinks.state_store import (
    HEAD,
    Changes,
    Database,
    join_key,
    pack_flush,
    split_key,
    store_rows,
    write_flush,
)

__all__ = ["DiskRecords", "MemoryRecords", "StateRecords", "Store", "state_records"]

logger = logging.getLogger(__name__)

# A stored state: its head, and a reader of its chunks by key (None when absent).
Loaded = tuple[bytes, Callable[[bytes], bytes | None]]


class Store(SerializedStore[bytes, bytes]):
    """Faust's store interface over the slot's `Database`; the writer process writes the
    worker's flushes to the same file (`StateRecords.job`).

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

    def load(self, head_key: bytes) -> Loaded | None:
        """A state's head and a reader of its chunks, from one range read; None if absent."""
        return _loaded(head_key, self.db.state(head_key))

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
        changes: Changes = []
        offsets: dict[tuple[str, int], int] = {}
        for event in batch:
            message = event.message
            changes.append((message.partition, [(bytes(message.key or b""), message.value)]))
            where = (message.topic, message.partition)
            offsets[where] = max(message.offset, offsets.get(where, -1))
        puts, deletes = store_rows(changes)
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


def _loaded(state: bytes, rows: dict[int, bytes]) -> Loaded | None:
    """A state from its rows (chunk -> value, the head at HEAD); None without a head."""
    head = rows.pop(HEAD, None)
    if head is None:
        return None
    chunks = {join_key(state, chunk): value for chunk, value in rows.items()}
    return head, chunks.get


def state_directory(app: Any) -> Path:
    """Where this worker slot keeps its store (set by stream/worker/app.py)."""
    directory: Path = app.aurora_state_dir
    return directory


class StateRecords(Protocol):
    """What the runtime needs of the table's store, whichever it is."""

    def load(self, head_key: bytes) -> Loaded | None:
        """A state's head and a reader of its chunks; None when the state is not there."""

    def load_many(self, head_keys: list[bytes]) -> dict[bytes, Loaded]:
        """`load` of many states at once, those that are there."""

    def job(
        self, topic: str, changes: Changes, last: Mapping[int, int]
    ) -> tuple[Callable[[bytes], None], bytes] | None:
        """A flush's records, which the changelog holds up to `last[partition]`: written now
        (None), or a function and its payload for the writer process to write them with."""

    def heads(self, after: bytes, limit: int) -> list[tuple[bytes, int | None, bytes]]:
        """Up to `limit` (head key, partition or None, head) past `after`, in key order: the
        sweep decides from a head whether to decode its state."""


class DiskRecords:
    """The local store's records (`aurora://`)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def load(self, head_key: bytes) -> Loaded | None:
        return self.store.load(head_key)

    def load_many(self, head_keys: list[bytes]) -> dict[bytes, Loaded]:
        rows = self.store.db.states(head_keys).items()
        return {state: found for state, chunks in rows if (found := _loaded(state, chunks))}

    def job(
        self, topic: str, changes: Changes, last: Mapping[int, int]
    ) -> tuple[Callable[[bytes], None], bytes] | None:
        # In the writer process: its core is the less busy, and SQLite's per-row work would
        # take the event loop's GIL (a sixth of the main process in a profile).
        return write_flush, pack_flush(self.store.db.path, topic, changes, last)

    def heads(self, after: bytes, limit: int) -> list[tuple[bytes, int | None, bytes]]:
        return [
            (state, partition, head) for state, partition, head in self.store.db.heads(after, limit)
        ]


class MemoryRecords:
    """Faust's `memory://` store: every record in a dict, rebuilt from the whole changelog."""

    def __init__(self, data: Any) -> None:
        self.data = data
        self._heads: list[bytes] = []

    def load(self, head_key: bytes) -> Loaded | None:
        head = self.data.get(head_key)
        return None if head is None else (head, self.data.get)

    def load_many(self, head_keys: list[bytes]) -> dict[bytes, Loaded]:
        return {key: found for key in head_keys if (found := self.load(key)) is not None}

    def job(
        self, topic: str, changes: Changes, last: Mapping[int, int]
    ) -> tuple[Callable[[bytes], None], bytes] | None:
        data = self.data
        for _, records in changes:
            for key, value in records:
                if value is not None:
                    data[key] = value
                elif key in data:
                    del data[key]
        return None

    def heads(self, after: bytes, limit: int) -> list[tuple[bytes, int | None, bytes]]:
        if not after:  # a new walk: the heads as they are now, sorted once for all its pages
            self._heads = sorted(k for k in map(bytes, self.data) if split_key(k)[1] == HEAD)
        start = bisect_right(self._heads, after)
        page = ((key, self.data.get(key)) for key in self._heads[start : start + limit])
        # A head gone since the walk began (its partition revoked) is left out.
        return [(key, None, head) for key, head in page if head is not None]


def state_records(data: Any) -> StateRecords:
    return DiskRecords(data) if isinstance(data, Store) else MemoryRecords(data)
