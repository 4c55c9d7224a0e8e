"""Versioned migrations: applied once, in order, refusing edited history and failed SQL."""

from __future__ import annotations

from pathlib import Path

import psycopg2
import pytest

from stream.migrate import MigrationError, load_migrations, migrate
from stream.settings import Settings


def _write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def test_applies_each_migration_once_in_order(
    tmp_path: Path, settings: Settings, pg_schema: str, pg_conn: psycopg2.extensions.connection
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
    with pg_conn.cursor() as cur:
        cur.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = 'things' ORDER BY ordinal_position",
            (pg_schema,),
        )
        assert [r[0] for r in cur.fetchall()] == ["id", "size"]


def test_refuses_a_migration_edited_after_it_was_applied(
    tmp_path: Path, settings: Settings, pg_schema: str
) -> None:
    folder = _write(tmp_path / "m", {"0001_create.sql": "CREATE TABLE a (id int);"})
    migrate(settings.postgres_conninfo(), load_migrations(folder), schema=pg_schema)
    _write(folder, {"0001_create.sql": "CREATE TABLE a (id bigint);"})
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(settings.postgres_conninfo(), load_migrations(folder), schema=pg_schema)


def test_a_failing_migration_applies_nothing_of_its_run(
    tmp_path: Path, settings: Settings, pg_schema: str, pg_conn: psycopg2.extensions.connection
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
