"""The local state store: rows and offsets change together, and a state reads back in one go."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.sinks.state_store import HEAD, Database, join_key, split_key
from stream.worker.store import MemoryRecords

TOPIC = "app-user-state-changelog"


@pytest.mark.parametrize(
    ("key", "state", "chunk"),
    [
        (b"activity|u1", b"activity|u1", HEAD),
        (b"activity#2918|u1", b"activity|u1", 2918),
        (b"sync#7|user|with|bars", b"sync|user|with|bars", 7),
        # A day's record of the JSON forms: a chunk number of its own, never a week's.
        (b"activity@20431|u1", b"activity|u1", -20433),
    ],
)
def test_keys_split_into_state_and_chunk(key: bytes, state: bytes, chunk: int) -> None:
    assert split_key(key) == (state, chunk)
    assert join_key(state, chunk) == key


def test_a_flush_and_its_offsets_in_one_transaction(tmp_path: Path) -> None:
    db = Database(tmp_path / "s.sqlite")
    db.write(
        [
            (b"activity|u1", HEAD, 0, b"h1"),
            (b"activity|u1", 5, 0, b"c5"),
            (b"sleep|u2", HEAD, 1, b"h2"),
        ],
        [],
        {(TOPIC, 0): 41, (TOPIC, 1): 7},
    )
    assert db.state(b"activity|u1") == {HEAD: b"h1", 5: b"c5"}
    assert db.offset(TOPIC, 0) == 41 and db.offset(TOPIC, 1) == 7 and db.offset(TOPIC, 2) is None
    db.write([(b"activity|u1", HEAD, 0, b"h1'")], [(b"activity|u1", 5)], {(TOPIC, 0): 40})
    assert db.state(b"activity|u1") == {HEAD: b"h1'"}
    assert db.offset(TOPIC, 0) == 41  # an offset never goes back
    assert db.heads(b"", 10) == [(b"activity|u1", 0, b"h1'"), (b"sleep|u2", 1, b"h2")]
    assert db.heads(b"activity|u1", 10) == [(b"sleep|u2", 1, b"h2")]
    db.close()


def test_a_failed_write_leaves_rows_and_offsets_as_they_were(tmp_path: Path) -> None:
    db = Database(tmp_path / "s.sqlite")
    db.write([(b"activity|u1", HEAD, 0, b"h1")], [], {(TOPIC, 0): 1})

    def rows() -> object:
        yield (b"activity|u1", HEAD, 0, b"h2")
        raise RuntimeError("the process dies half way")

    with pytest.raises(RuntimeError):
        db.write(rows(), [], {(TOPIC, 0): 2})  # type: ignore[arg-type]
    assert db.state(b"activity|u1") == {HEAD: b"h1"} and db.offset(TOPIC, 0) == 1
    db.close()
    reopened = Database(tmp_path / "s.sqlite")
    assert reopened.state(b"activity|u1") == {HEAD: b"h1"}
    reopened.close()


def test_memory_heads_come_a_page_at_a_time_in_key_order() -> None:
    data = {
        b"sleep|u2": b"h2",
        b"activity|u1": b"h1",
        b"activity#2918|u1": b"c",
        b"activity@20431|u1": b"d",
        b"sync|u3": b"h3",
    }
    records = MemoryRecords(data)
    first = records.heads(b"", 2)
    assert first == [(b"activity|u1", None, b"h1"), (b"sleep|u2", None, b"h2")]
    assert records.heads(first[-1][0], 2) == [(b"sync|u3", None, b"h3")]
    assert records.heads(b"sync|u3", 2) == []
