"""Versioned migrations: applied once, in order, refusing edited history and failed SQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from stream.errors import MigrationError
from stream.ops.migrate import load_migrations, migrate
from stream.settings import Settings


def _write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def _columns(conn: psycopg.Connection[Any], schema: str, table: str) -> list[tuple[str, str]]:
    """(name, data type) of each column of `table`, in order."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            (schema, table),
        )
        columns: list[tuple[str, str]] = cur.fetchall()
    conn.rollback()
    return columns


def test_applies_each_migration_once_in_order(
    tmp_path: Path, settings: Settings, pg_schema: str, pg_conn: psycopg.Connection[Any]
) -> None:
    folder = _write(
        tmp_path / "m",
        {
            "0002_add_column.sql": "ALTER TABLE things ADD COLUMN size int;",
            "0001_create.sql": "CREATE TABLE things (id int PRIMARY KEY);",
            "README.md": "not a migration",
        },
    )
    conninfo = settings.postgres_conninfo()
    assert migrate(conninfo, load_migrations(folder), schema=pg_schema) == [1, 2]
    assert migrate(conninfo, load_migrations(folder), schema=pg_schema) == []
    assert [name for name, _ in _columns(pg_conn, pg_schema, "things")] == ["id", "size"]


def test_refuses_a_migration_edited_after_it_was_applied(
    tmp_path: Path, settings: Settings, pg_schema: str
) -> None:
    folder = _write(tmp_path / "m", {"0001_create.sql": "CREATE TABLE a (id int);"})
    migrate(settings.postgres_conninfo(), load_migrations(folder), schema=pg_schema)
    _write(folder, {"0001_create.sql": "CREATE TABLE a (id bigint);"})
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(settings.postgres_conninfo(), load_migrations(folder), schema=pg_schema)


def test_a_failing_migration_applies_nothing_of_its_run(
    tmp_path: Path, settings: Settings, pg_schema: str, pg_conn: psycopg.Connection[Any]
) -> None:
    folder = _write(
        tmp_path / "m",
        {"0001_ok.sql": "CREATE TABLE b (id int);", "0002_bad.sql": "CREATE TABLE b (id int);"},
    )
    with pytest.raises(MigrationError, match="0002_bad failed"):
        migrate(settings.postgres_conninfo(), load_migrations(folder), schema=pg_schema)
    with pg_conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s)", (f"{pg_schema}.b",))
        assert cur.fetchone() == (None,)


def test_duplicate_versions_are_refused(tmp_path: Path) -> None:
    folder = _write(tmp_path / "m", {"0001_a.sql": "SELECT 1;", "0001_b.sql": "SELECT 2;"})
    with pytest.raises(MigrationError, match="share version 0001"):
        load_migrations(folder)


def test_an_archive_made_before_0006_keeps_its_events_and_loses_the_user_index(
    settings: Settings, pg_schema: str, pg_conn: psycopg.Connection[Any]
) -> None:
    """The packaged migrations upgrade a jsonb archive in place: every event stays, as JSON
    text, and the archive's one index is its key, event time first (migration 0008)."""
    conninfo = settings.postgres_conninfo()
    packaged = load_migrations()
    before = [m for m in packaged if m.version < 6]
    assert migrate(conninfo, before, schema=pg_schema) == [m.version for m in before]
    event = {"event_id": "0b6f7d1e-0000-4000-8000-000000000001", "payload": {"mood": 7}}
    with pg_conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "INSERT INTO {}.raw_events (event_id, user_id, event_type, event_timestamp, event) "
                "VALUES (%s, 'u1', 'activity', now(), %s::jsonb)"
            ).format(sql.Identifier(pg_schema)),
            (event["event_id"], json.dumps(event)),
        )
    pg_conn.commit()
    assert migrate(conninfo, packaged, schema=pg_schema) == [
        m.version for m in packaged if m.version >= 6
    ]
    with pg_conn.cursor() as cur:
        cur.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = 'raw_events' "
            "ORDER BY indexname",
            (pg_schema,),
        )
        assert [r[0] for r in cur.fetchall()] == ["raw_events_pkey"]
        cur.execute("SELECT pg_get_indexdef(to_regclass(%s))", (f"{pg_schema}.raw_events_pkey",))
        assert "(event_timestamp, event_id)" in str((cur.fetchone() or ("",))[0])
        cur.execute(
            sql.SQL("SELECT event::text FROM {}.raw_events").format(sql.Identifier(pg_schema))
        )
        (text,) = cur.fetchone() or ("",)
    pg_conn.rollback()
    assert dict(_columns(pg_conn, pg_schema, "raw_events"))["event"] == "json"
    assert json.loads(text) == event
