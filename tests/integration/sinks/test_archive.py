"""The raw-event archive against real Postgres: each event once, as it arrived."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
import pytest

from stream.core.ingest import archive_row
from stream.core.records import ArchiveRow, Message
from stream.settings import Settings
from stream.sinks.archive import ArchiveSink
from stream.synth.generator import GeneratorConfig, generate

NOW = datetime.now(UTC)


@pytest.fixture
def sink(settings: Settings) -> Iterator[ArchiveSink]:
    archive = ArchiveSink(settings.postgres_conninfo(), settings.postgres_schema)
    yield archive
    archive.close()


@pytest.fixture
def rows(unique: str) -> Callable[[int], list[ArchiveRow]]:
    """Factory: archive rows of generated events no earlier call made, of users of this test."""
    # The generator derives event ids from its seed: a seed of this test's own, ids of its own.
    seed = int(unique[1:9], 16)
    config = GeneratorConfig(
        users=3, days=2, seed=seed, start=NOW - timedelta(days=2), user_prefix=unique
    )
    events = iter([g for g in generate(config) if g.event is not None])

    def make(n: int) -> list[ArchiveRow]:
        made = []
        for offset in range(n):
            g = next(events)
            assert g.event is not None
            message = Message(f"aurora.{g.event_type}", 0, offset, g.key, g.raw)
            made.append(archive_row(g.event, message, too_late=False))
        return made

    return make


def _archived(conn: psycopg.Connection[Any], ids: list[str]) -> list[tuple[str, str]]:
    """(event_id, the archived JSON text) of each of `ids` archived."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT event_id::text, event::text FROM raw_events WHERE event_id = ANY(%s::uuid[]) "
            "ORDER BY source_offset",
            (ids,),
        )
        found = cur.fetchall()
    conn.rollback()
    return found


def test_a_new_batch_goes_straight_in(
    sink: ArchiveSink,
    rows: Callable[[int], list[ArchiveRow]],
    pg_conn: psycopg.Connection[Any],
) -> None:
    batch = rows(3)
    sink.write_rows(batch)
    assert sink.merged == 0
    stored = _archived(pg_conn, [r[0] for r in batch])
    assert [event_id for event_id, _ in stored] == [r[0] for r in batch]
    # The event as it arrived, byte for byte: the message's own JSON, not a re-encoding.
    assert [text for _, text in stored] == [r[4] for r in batch]


def test_a_replayed_batch_adds_only_what_is_new(
    sink: ArchiveSink,
    rows: Callable[[int], list[ArchiveRow]],
    pg_conn: psycopg.Connection[Any],
) -> None:
    first, later = rows(2), rows(2)
    sink.write_rows(first)
    # After a crash the batch comes again, with newer events behind it: the key refuses the
    # COPY, and the merge adds the two new events only.
    sink.write_rows(first + later)
    assert sink.merged == 1
    assert len(_archived(pg_conn, [r[0] for r in first + later])) == 4


def test_an_event_twice_in_one_batch_is_archived_once(
    sink: ArchiveSink,
    rows: Callable[[int], list[ArchiveRow]],
    pg_conn: psycopg.Connection[Any],
) -> None:
    (row,) = rows(1)
    sink.write_rows([row, row])
    assert sink.merged == 1
    assert len(_archived(pg_conn, [row[0]])) == 1


def test_an_event_is_archived_exactly_whatever_characters_it_holds(
    sink: ArchiveSink,
    rows: Callable[[int], list[ArchiveRow]],
    pg_conn: psycopg.Connection[Any],
) -> None:
    """Every character COPY's text format treats specially arrives as it was sent, inside the
    JSON and around it, the whitespace between tokens included."""
    made = rows(3)
    tricky = [
        # Escapes inside strings: a quote, a backslash, an escaped newline and tab, \\N.
        {"note": 'he said "hi" \\ back\\slash \n new\tline \r \\N', "emoji": "\U0001f600"},
        # A backslash at the very end of a string.
        {"path": "C:\\temp\\"},
    ]
    batch = []
    for row, extra in zip(made, tricky, strict=False):
        event = {**orjson.loads(row[4]), **extra}
        batch.append((*row[:4], orjson.dumps(event).decode(), *row[5:]))
    # Raw whitespace between tokens (a pretty-printing client): tabs, newlines, a CR.
    pretty = orjson.dumps(orjson.loads(made[2][4]), option=orjson.OPT_INDENT_2).decode()
    batch.append((*made[2][:4], pretty.replace("  ", "\t").replace("\n", "\r\n"), *made[2][5:]))
    sink.write_rows(batch)
    stored = _archived(pg_conn, [r[0] for r in batch])
    assert [text for _, text in stored] == [r[4] for r in batch]
