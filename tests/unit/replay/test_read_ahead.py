"""Replay's read-ahead: the chunks in their order, the reader's error in the caller, and a
caller that stops early stops the reader with it."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from stream.replay.sources import Chunk, read_ahead


def numbered(n: int, made: list[int]) -> Iterator[Chunk]:
    for i in range(n):
        made.append(i)
        yield [({"n": i}, None)]  # type: ignore[list-item]  # the chunk's contents do not matter


def test_chunks_come_in_order() -> None:
    made: list[int] = []
    assert [c[0][0]["n"] for c in read_ahead(numbered(50, made))] == list(range(50))


def test_an_error_in_the_reader_is_raised_to_the_caller() -> None:
    def failing() -> Iterator[Chunk]:
        yield []
        raise RuntimeError("the archive went away")

    got = read_ahead(failing())
    assert next(got) == []
    with pytest.raises(RuntimeError, match="the archive went away"):
        next(got)


def test_a_caller_that_stops_stops_the_reader() -> None:
    made: list[int] = []
    chunks = read_ahead(numbered(1_000, made), depth=2)
    assert next(chunks)[0][0]["n"] == 0
    chunks.close()
    assert not any(t.name == "replay-read-ahead" for t in threading.enumerate())
    assert len(made) <= 4  # the one taken, the two queued, the one waiting for room
