"""Least-privilege Postgres roles (migration 0004): each may do its job and is refused the rest.

Every test migrates a schema of its own and logs in as users made members of the roles. The
worker test runs a real worker as an `aurora_ingestor` member and checks its offline rows
against the reference: the role is enough to do the work, not only too little to do harm.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from pydantic import SecretStr

from stream.ops.migrate import load_migrations, migrate
from stream.ops.prefix import IN_PREFIX, prefix_bounds
from stream.settings import Settings
from tests.integration.helpers import (
    Worker,
    check_offline,
    distinct_valid,
    expected_rows,
    offline_rows,
    produce,
    traffic,
    wait_for,
)

pytestmark = pytest.mark.integration

Login = Callable[[str], Settings]


@pytest.fixture
def schema(settings: Settings, pg_schema: str) -> str:
    migrate(settings.postgres_conninfo(), load_migrations(), schema=pg_schema)
    return pg_schema


@pytest.fixture
def login(
    settings: Settings, pg_conn: psycopg.Connection[Any], schema: str, unique: str
) -> Iterator[Login]:
    """Factory: settings that log in as a new user holding `role`, on the test's schema."""
    made: list[str] = []

    def make(role: str) -> Settings:
        user = f"{unique}_{role.removeprefix('aurora_')}"
        with pg_conn.cursor() as cur:
            cur.execute(
                sql.SQL("CREATE ROLE {} LOGIN IN ROLE {}").format(
                    sql.Identifier(user), sql.Identifier(role)
                )
            )
        pg_conn.commit()
        made.append(user)
        pg = settings.postgres
        return settings.model_copy(
            update={
                "postgres_dsn": SecretStr(f"postgresql://{user}@{pg.host}:{pg.port}/{pg.database}"),
                "postgres_schema": schema,
            }
        )

    yield make
    pg_conn.rollback()
    for user in made:
        with pg_conn.cursor() as cur:
            cur.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(user)))
            cur.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(user)))
        pg_conn.commit()


def connect(settings: Settings) -> psycopg.Connection[Any]:
    return psycopg.connect(
        settings.postgres_conninfo(), options=f"-c search_path={settings.postgres_schema}"
    )


def allowed(conn: psycopg.Connection[Any], statement: str) -> bool:
    """Run `statement` in a transaction that is rolled back; False when privileges refuse it."""
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
        return True
    except psycopg.errors.InsufficientPrivilege:
        return False
    finally:
        conn.rollback()


ROW = "('u1', now(), 1)"
ARCHIVE_ROW = "(gen_random_uuid(), 'u1', 'activity', now(), '{}'::json, 't', 0, 0, false, now())"


def test_the_ingestor_appends_and_upserts_and_nothing_more(login: Login) -> None:
    conn = connect(login("aurora_ingestor"))
    try:
        assert allowed(conn, f"INSERT INTO raw_events VALUES {ARCHIVE_ROW}")
        assert allowed(
            conn,
            "INSERT INTO user_activity_features (user_id, event_timestamp, activity_count_24h) "
            f"VALUES {ROW} ON CONFLICT (user_id, event_timestamp) "
            "DO UPDATE SET activity_count_24h = EXCLUDED.activity_count_24h",
        )
        # The archived events are the users' data: the ingestor writes them, never reads them.
        assert not allowed(conn, "SELECT event FROM raw_events")
        assert not allowed(conn, "SELECT user_id FROM raw_events")
        assert not allowed(conn, "UPDATE raw_events SET too_late = true")
        assert not allowed(conn, "DELETE FROM raw_events")
        assert not allowed(conn, "DELETE FROM user_activity_features")
        assert not allowed(conn, "TRUNCATE sleep_features")
        assert not allowed(conn, "DROP TABLE social_features")
        assert not allowed(conn, "ALTER TABLE exercise_features ADD COLUMN x int")
        assert not allowed(conn, "CREATE TABLE planted (x int)")
        assert not allowed(conn, "SELECT * FROM schema_migrations")
        assert not allowed(conn, "INSERT INTO schema_migrations VALUES (99, 'x', 'x', now())")
    finally:
        conn.close()


def test_the_trainer_reads_and_writes_nothing(login: Login) -> None:
    conn = connect(login("aurora_trainer"))
    try:
        for table in ("raw_events", "user_activity_features", "integration_features"):
            assert allowed(conn, f"SELECT * FROM {table}")
        assert not allowed(conn, f"INSERT INTO raw_events VALUES {ARCHIVE_ROW}")
        assert not allowed(
            conn,
            "INSERT INTO user_activity_features (user_id, event_timestamp, activity_count_24h) "
            f"VALUES {ROW}",
        )
        assert not allowed(conn, "UPDATE sleep_features SET user_id = user_id")
        assert not allowed(conn, "DELETE FROM raw_events")
        assert not allowed(conn, "TRUNCATE user_activity_features")
        assert not allowed(conn, "CREATE TABLE planted (x int)")
        assert not allowed(conn, "DROP TABLE raw_events")
    finally:
        conn.close()


def test_backfill_replaces_snapshots_and_leaves_the_archive_alone(login: Login) -> None:
    conn = connect(login("aurora_backfill"))
    try:
        assert allowed(conn, "SELECT * FROM raw_events")
        assert allowed(conn, "DELETE FROM user_activity_features WHERE user_id = 'u1'")
        assert allowed(
            conn,
            "INSERT INTO user_activity_features (user_id, event_timestamp, activity_count_24h) "
            f"VALUES {ROW}",
        )
        assert not allowed(conn, f"INSERT INTO raw_events VALUES {ARCHIVE_ROW}")
        assert not allowed(conn, "DELETE FROM raw_events")
        assert not allowed(conn, "DROP TABLE user_activity_features")
    finally:
        conn.close()


def test_a_worker_runs_as_the_ingestor_role(
    login: Login,
    stream_settings: Settings,
    start_worker: Worker,
    settings: Settings,
    schema: str,
    unique: str,
    tmp_path: Path,
) -> None:
    as_ingestor = login("aurora_ingestor")
    worker_settings = stream_settings.model_copy(
        update={"postgres_dsn": as_ingestor.postgres_dsn, "postgres_schema": schema}
    )
    events = traffic(unique, users=8, days=2)
    want = expected_rows(events)
    start_worker(worker_settings)
    produce(worker_settings, events)

    owner = psycopg.connect(settings.postgres_conninfo(), options=f"-c search_path={schema}")
    try:
        distinct = distinct_valid(events)
        wait_for(
            lambda: _count(owner, "raw_events", unique) == distinct, 180, "the archive", tmp_path
        )
        wait_for(lambda: offline_rows(owner, unique) == len(want), 180, "offline rows", tmp_path)
        check_offline(owner, unique, want)
    finally:
        owner.close()


def _count(conn: psycopg.Connection[Any], table: str, prefix: str) -> int:
    with conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {table} WHERE {IN_PREFIX}", prefix_bounds(f"{prefix}-"))
        row = cur.fetchone()
    conn.rollback()
    return int(row[0]) if row else 0
