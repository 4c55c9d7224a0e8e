"""Versioned SQL migrations: files NNNN_name.sql applied once each, in order, under a lock."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable

import psycopg
from psycopg import sql

from stream.errors import MigrationError

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Any constant works; it only has to be the same in every process that migrates.
_LOCK_KEY = 0x4155524F5241


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(folder: Traversable | None = None) -> list[Migration]:
    """The migrations in `folder` (the packaged ones by default), ordered by version."""
    folder = folder or files("stream.ops") / "migrations"
    found: dict[int, Migration] = {}
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if not match:
            continue
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"two migrations share version {version:04d}")
        found[version] = Migration(version, match.group(2), entry.read_text())
    return [found[v] for v in sorted(found)]


def migrate(conninfo: str, migrations: Iterable[Migration], schema: str = "public") -> list[int]:
    """Apply the migrations not yet recorded in `schema`; return the versions applied now."""
    applied_now: list[int] = []
    conn = psycopg.connect(conninfo)
    try:
        with conn, conn.cursor() as cur:
            # Two workers starting together must not both apply the same migration.
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            cur.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
            cur.execute(
                """
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version    integer PRIMARY KEY,
                    name       text NOT NULL,
                    checksum   text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """
            )
            cur.execute("SELECT version, checksum FROM schema_migrations")
            recorded: dict[int, str] = {int(v): str(c) for v, c in cur.fetchall()}
            for migration in migrations:
                known = recorded.get(migration.version)
                if known is not None:
                    if known != migration.checksum:
                        raise MigrationError(
                            f"migration {migration.version:04d}_{migration.name} was changed "
                            "after it was applied; add a new migration instead"
                        )
                    continue
                logger.info("applying migration %04d_%s", migration.version, migration.name)
                try:
                    cur.execute(migration.sql)
                except psycopg.Error as exc:
                    raise MigrationError(
                        f"migration {migration.version:04d}_{migration.name} failed: {exc}"
                    ) from exc
                cur.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
                applied_now.append(migration.version)
    finally:
        conn.close()
    return applied_now
