"""Day partitions on a real Postgres: migrating tables with rows, rows no partition covers yet,
retention by whole days, and queries bounded in time reading only their days."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from stream.core.records import ArchiveRow
from stream.ops.migrate import load_migrations, migrate
from stream.ops.partitions import TABLES, connect, maintain, partitions_of, storage
from stream.settings import Settings
from stream.sinks.archive import ArchiveSink

NOW = datetime.now(UTC)
TODAY = datetime.combine(NOW.date(), datetime.min.time(), tzinfo=UTC)


def _in(settings: Settings, schema: str, **more: Any) -> Settings:
    return settings.model_copy(update={"postgres_schema": schema, **more})


def _event(when: datetime, user: str = "u1") -> ArchiveRow:
    event_id = str(uuid.uuid4())
    body = {"event_id": event_id, "user_id": user, "event_type": "activity", "t": when.isoformat()}
    return (
        event_id,
        user,
        "activity",
        when.isoformat(),
        json.dumps(body),
        "aurora.activity",
        0,
        1,
        False,
    )


def _count(conn: psycopg.Connection[Any], schema: str, table: str, where: str = "true") -> int:
    row = conn.execute(
        sql.SQL("SELECT count(*) FROM {}.{} WHERE " + where).format(
            sql.Identifier(schema), sql.Identifier(table)
        )
    ).fetchone()
    conn.rollback()
    return int(row[0]) if row else 0


def _partition_names(settings: Settings, table: str) -> dict[str, tuple[Any, Any, bool]]:
    with connect(settings) as conn:
        return {p.name: (p.start, p.end, p.default) for p in partitions_of(conn, table)}


def test_tables_with_rows_keep_every_row_through_the_migration(
    settings: Settings, pg_schema: str, pg_conn: psycopg.Connection[Any]
) -> None:
    """Rows written before 0008 stay, in one partition up to their newest day; a row stamped
    past tomorrow moves to DEFAULT, then into its own day once maintained."""
    conninfo = settings.postgres_conninfo()
    packaged = load_migrations()
    migrate(conninfo, [m for m in packaged if m.version < 8], schema=pg_schema)
    rows = [_event(TODAY - timedelta(days=d, hours=3)) for d in (0, 1, 40)]
    ahead = _event(TODAY + timedelta(days=2, hours=1))
    ArchiveSink(conninfo, pg_schema).write_rows([*rows, ahead])
    pg_conn.execute(
        sql.SQL(
            "INSERT INTO {}.sleep_features (user_id, event_timestamp, sleep_sessions_7d) "
            "VALUES ('u1', %s, 1), ('u2', %s, 2)"
        ).format(sql.Identifier(pg_schema)),
        (TODAY - timedelta(days=3), TODAY - timedelta(days=50)),
    )
    pg_conn.commit()

    assert migrate(conninfo, packaged, schema=pg_schema) == [8]
    moved = _in(settings, pg_schema)
    archive = _partition_names(moved, "raw_events")
    # The newest row is past tomorrow: the old rows' partition ends at tomorrow, not its day.
    tomorrow = TODAY + timedelta(days=1)
    assert archive[f"raw_events_before_{tomorrow:%Y%m%d}"] == (None, tomorrow, False)
    assert archive["raw_events_default"][2]
    assert _count(pg_conn, pg_schema, "raw_events") == 4
    assert _count(pg_conn, pg_schema, "raw_events_default") == 1
    assert _count(pg_conn, pg_schema, "sleep_features") == 2
    sleep = _partition_names(moved, "sleep_features")
    # Here the newest row is three days old: the partition ends with its day.
    ends = TODAY - timedelta(days=2)
    assert sleep[f"sleep_features_before_{ends:%Y%m%d}"] == (None, ends, False)

    maintain(moved)
    assert _count(pg_conn, pg_schema, "raw_events_default") == 0
    day = (TODAY + timedelta(days=2)).strftime("%Y%m%d")
    assert _count(pg_conn, pg_schema, f"raw_events_p{day}") == 1
    assert _count(pg_conn, pg_schema, "raw_events") == 4
    # The keys still make a retried write add nothing.
    ArchiveSink(conninfo, pg_schema).write_rows([*rows, ahead])
    assert _count(pg_conn, pg_schema, "raw_events") == 4


def _migrated(settings: Settings, schema: str, **more: Any) -> Settings:
    migrate(settings.postgres_conninfo(), load_migrations(), schema=schema)
    return _in(settings, schema, **more)


def test_a_row_no_partition_covers_is_kept_then_moved_into_its_day(
    settings: Settings, pg_schema: str, pg_conn: psycopg.Connection[Any]
) -> None:
    here = _migrated(settings, pg_schema, partition_days_ahead=3)
    maintain(here)
    late = _event(TODAY - timedelta(days=200, hours=-5))  # a very late event: no day made for it
    future = _event(TODAY + timedelta(days=30))  # past the days ahead
    now = _event(NOW)
    ArchiveSink(here.postgres_conninfo(), pg_schema).write_rows([late, future, now])
    assert _count(pg_conn, pg_schema, "raw_events_default") == 2
    assert _count(pg_conn, pg_schema, "raw_events") == 3

    plans = maintain(here)
    assert plans["raw_events"].create == [(TODAY - timedelta(days=200)).date()]
    assert _count(pg_conn, pg_schema, f"raw_events_p{TODAY - timedelta(days=200):%Y%m%d}") == 1
    # The far-future row waits in DEFAULT until its day is one of the days ahead.
    assert _count(pg_conn, pg_schema, "raw_events_default") == 1
    assert _count(pg_conn, pg_schema, "raw_events") == 3
    later = maintain(here, now=NOW + timedelta(days=28))
    assert (TODAY + timedelta(days=30)).date() in later["raw_events"].create
    assert _count(pg_conn, pg_schema, "raw_events_default") == 0
    assert _count(pg_conn, pg_schema, "raw_events") == 3
    with connect(here) as conn:
        shown = storage(conn, "raw_events")
    assert shown.default_rows == 0
    assert shown.oldest == TODAY - timedelta(days=200)
    assert shown.newest == TODAY + timedelta(days=28 + 3 + 1)  # the last day ahead ends then


def _dead_tuples(conn: psycopg.Connection[Any], schema: str) -> int:
    conn.execute("SELECT pg_stat_force_next_flush()")
    row = conn.execute(
        "SELECT coalesce(sum(n_dead_tup), 0) FROM pg_stat_user_tables WHERE schemaname = %s",
        (schema,),
    ).fetchone()
    conn.rollback()
    return int(row[0]) if row else 0


def test_retention_drops_whole_days_and_leaves_no_dead_tuples(
    settings: Settings, pg_schema: str, pg_conn: psycopg.Connection[Any]
) -> None:
    here = _migrated(settings, pg_schema)
    old = [_event(TODAY - timedelta(days=d, hours=-2)) for d in range(45, 35, -1)]
    kept = [_event(TODAY - timedelta(days=d, hours=-2)) for d in (31, 10, 0)]
    ArchiveSink(here.postgres_conninfo(), pg_schema).write_rows([*old, *kept])
    pg_conn.execute(
        sql.SQL(
            "INSERT INTO {}.social_features (user_id, event_timestamp, posts_7d) "
            "SELECT 'u' || n, %s, n FROM generate_series(1, 100) n"
        ).format(sql.Identifier(pg_schema)),
        (TODAY - timedelta(days=20),),
    )
    pg_conn.commit()
    maintain(here)  # every row into a day of its own
    assert _count(pg_conn, pg_schema, "raw_events_default") == 0
    dead_before = _dead_tuples(pg_conn, pg_schema)

    with pytest.raises(ValueError, match="AURORA_ARCHIVE_RETENTION_FORCE"):
        Settings(postgres_schema=pg_schema, archive_retention_days=7)
    plans = maintain(_in(here, pg_schema, archive_retention_days=32, snapshot_retention_days=14))
    assert len(plans["raw_events"].drop) == 10
    assert [p.name for p in plans["social_features"].drop] == [
        f"social_features_p{TODAY - timedelta(days=20):%Y%m%d}"
    ]
    assert _count(pg_conn, pg_schema, "raw_events") == 3
    assert _count(pg_conn, pg_schema, "social_features") == 0
    assert _dead_tuples(pg_conn, pg_schema) == dead_before
    # A shorter archive, forced: the day 31 days back goes too.
    forced = _in(here, pg_schema, archive_retention_days=7, archive_retention_force=True)
    maintain(forced)
    assert _count(pg_conn, pg_schema, "raw_events") == 1


def _explain(conn: psycopg.Connection[Any], query: str, args: tuple[Any, ...] = ()) -> str:
    rows = conn.execute("EXPLAIN " + query, args).fetchall()
    conn.rollback()
    return "\n".join(r[0] for r in rows)


def test_a_query_bounded_in_time_reads_only_its_days(
    settings: Settings, pg_schema: str, pg_conn: psycopg.Connection[Any]
) -> None:
    here = _migrated(settings, pg_schema)
    ArchiveSink(here.postgres_conninfo(), pg_schema).write_rows(
        [_event(TODAY - timedelta(days=d, hours=-1)) for d in range(6)]
    )
    pg_conn.execute(
        sql.SQL(
            "INSERT INTO {}.sleep_features (user_id, event_timestamp) "
            "SELECT 'u1', %s - n * interval '1 day' FROM generate_series(0, 5) n"
        ).format(sql.Identifier(pg_schema)),
        (NOW,),
    )
    pg_conn.commit()
    maintain(here)
    pg_conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(pg_schema)))
    pg_conn.commit()  # kept by the rollbacks after each EXPLAIN
    # The archive as replay reads it (stream/replay/sources.py): two days.
    plan = _explain(
        pg_conn,
        "SELECT event::text FROM raw_events WHERE event_timestamp >= %s AND event_timestamp < %s "
        "ORDER BY event_timestamp",
        (TODAY - timedelta(days=3), TODAY - timedelta(days=1)),
    )
    read = {n for n in _partition_names(here, "raw_events") if n in plan}
    assert read == {
        f"raw_events_p{TODAY - timedelta(days=3):%Y%m%d}",
        f"raw_events_p{TODAY - timedelta(days=2):%Y%m%d}",
    }, plan
    # A snapshot table as Feast's pull for materialize reads it (BETWEEN literals).
    start, end = TODAY - timedelta(days=1), TODAY + timedelta(hours=1)
    plan = _explain(
        pg_conn,
        f"SELECT user_id FROM sleep_features WHERE event_timestamp BETWEEN '{start}' AND '{end}'",
    )
    read = {n for n in _partition_names(here, "sleep_features") if n in plan}
    assert read == {
        f"sleep_features_p{TODAY - timedelta(days=1):%Y%m%d}",
        f"sleep_features_p{TODAY:%Y%m%d}",
    }, plan


def test_every_table_is_partitioned_by_day(settings: Settings, pg_schema: str) -> None:
    here = _migrated(settings, pg_schema, partition_days_ahead=2)
    maintain(here)
    for table in TABLES:
        days = {name: span for name, span in _partition_names(here, table).items() if not span[2]}
        assert sorted(days) == [f"{table}_p{TODAY + timedelta(days=d):%Y%m%d}" for d in range(3)]
        for start, end, _ in days.values():
            assert end - start == timedelta(days=1)
