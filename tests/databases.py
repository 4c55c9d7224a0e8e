"""A migrated Postgres database of a test's own, on whichever server the settings name.

Invariant: the database is created fresh, migrated, handed over, and dropped (connections and
all) however the block ends; the settings' server is otherwise untouched.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from pydantic import SecretStr

from stream.ops.migrate import load_migrations, migrate
from stream.settings import Settings


@contextmanager
def own_database(base: Settings, prefix: str) -> Iterator[Settings]:
    """`base` pointed at a new database named `<prefix>_<random>`, migrated; dropped after."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin(base, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        dsn = base.postgres_dsn.get_secret_value().rsplit("/", 1)[0] + f"/{name}"
        settings = base.model_copy(update={"postgres_dsn": SecretStr(dsn)})
        migrate(settings.postgres_conninfo(), load_migrations())
        yield settings
    finally:
        admin(base, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def admin(settings: Settings, statement: sql.Composed) -> None:
    """One statement outside a transaction (CREATE and DROP DATABASE take none)."""
    with psycopg.connect(settings.postgres_conninfo(), autocommit=True) as conn:
        conn.execute(statement)
