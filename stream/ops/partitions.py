"""The archive's and the snapshots' day partitions: made ahead, filled from DEFAULT, dropped whole.

`maintain` runs at the worker's start and then hourly (in its writer process), at `make migrate`,
and as `python -m stream partitions`. For each table it makes the days ahead, moves any rows the
DEFAULT partition caught into their day's new partition, and detaches and drops the partitions
older than the retention (stream/ops/partition_plan.py decides which). Invariants: no row is
lost or copied twice (a day is moved in one transaction); only one maintainer works at a time
(an advisory lock; the others skip their turn); a lock it cannot get within `LOCK_TIMEOUT`
fails its step rather than stall the worker's writes behind it, and the next turn tries again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final

import psycopg
from psycopg import sql

from stream.catalog import VIEWS
from stream.errors import PartitionError
from stream.ops.partition_plan import DAY, Partition, Plan, midnight, parse_bound, partition_name
from stream.ops.partition_plan import plan as plan_for
from stream.settings import Settings

logger = logging.getLogger(__name__)

ARCHIVE: Final = "raw_events"
TABLES: Final = (ARCHIVE, *(spec.table for spec in VIEWS))
LOCK_TIMEOUT: Final = "5s"
# Not the migrations' key: a migration and a maintenance may not wait on each other's lock.
_LOCK_KEY: Final = 0x4155524F5250


def retention_days(settings: Settings, table: str) -> int | None:
    return settings.archive_retention_days if table == ARCHIVE else settings.snapshot_retention_days


def connect(settings: Settings) -> psycopg.Connection[tuple[Any, ...]]:
    """A connection whose partition bounds print in UTC, the days' time zone."""
    return psycopg.connect(
        settings.postgres_conninfo(),
        options=f"-c search_path={settings.postgres_schema} -c TimeZone=UTC",
    )


def partitions_of(conn: psycopg.Connection[Any], table: str) -> list[Partition]:
    kind = conn.execute(
        "SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", (table,)
    ).fetchone()
    if kind is None:
        raise PartitionError(f"no table {table}: run `make migrate`")
    if kind[0] != "p":
        raise PartitionError(f"{table} is not partitioned: run `make migrate` (migration 0008)")
    rows = conn.execute(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), pg_total_relation_size(c.oid) "
        "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass(%s) ORDER BY c.relname",
        (table,),
    ).fetchall()
    return [parse_bound(name, expr, int(size)) for name, expr, size in rows]


def default_days(conn: psycopg.Connection[Any], default: Partition | None) -> set[date]:
    if default is None:
        return set()
    rows = conn.execute(
        sql.SQL("SELECT DISTINCT (event_timestamp AT TIME ZONE 'UTC')::date FROM {}").format(
            sql.Identifier(default.name)
        )
    ).fetchall()
    return {day for (day,) in rows}


@dataclass(frozen=True)
class Storage:
    """What `stream status` shows of a table: its days, its size, rows waiting in DEFAULT."""

    table: str
    partitions: int
    oldest: datetime | None  # the start of the oldest partition; None: open (the pre-0008 rows)
    newest: datetime | None  # the end of the newest one
    size_bytes: int
    default_rows: int


def storage(conn: psycopg.Connection[Any], table: str) -> Storage:
    found = partitions_of(conn, table)
    ranged = [p for p in found if not p.default]
    default = next((p for p in found if p.default), None)
    waiting = 0
    if default is not None:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(default.name))
        ).fetchone()
        waiting = int(row[0]) if row else 0
    starts = [p.start for p in ranged]
    ends = [p.end for p in ranged if p.end is not None]
    return Storage(
        table,
        len(ranged),
        None if not starts or None in starts else min(s for s in starts if s is not None),
        max(ends) if ends else None,
        sum(p.size_bytes for p in found),
        waiting,
    )


@contextmanager
def _step(conn: psycopg.Connection[Any]) -> Iterator[None]:
    with conn.transaction():
        conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        yield


def create_day(
    conn: psycopg.Connection[Any], table: str, day: date, default: Partition | None, moves: bool
) -> int:
    """Make `day`'s partition, with the rows DEFAULT holds of it; return how many moved."""
    name = sql.Identifier(partition_name(table, day))
    moved = 0
    with _step(conn):
        conn.execute(
            sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS)").format(
                name, sql.Identifier(table)
            )
        )
        if moves and default is not None:
            cur = conn.execute(
                sql.SQL(
                    "WITH moved AS (DELETE FROM {} WHERE event_timestamp >= %s "
                    "AND event_timestamp < %s RETURNING *) INSERT INTO {} SELECT * FROM moved"
                ).format(sql.Identifier(default.name), name),
                (midnight(day), midnight(day) + DAY),
            )
            moved = cur.rowcount
        attach_day(conn, table, day)
    return moved


def attach_day(conn: psycopg.Connection[Any], table: str, day: date) -> None:
    """Attach the table built apart as `day`'s partition, in the caller's transaction.

    Attached, not created as a partition: an attach takes a lock that lets the worker's inserts
    into the other partitions go on (the DEFAULT one, checked, is locked).
    """
    # DDL takes no parameters: the bounds are literals.
    conn.execute(
        sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
            sql.Identifier(table),
            sql.Identifier(partition_name(table, day)),
            sql.Literal(midnight(day)),
            sql.Literal(midnight(day) + DAY),
        )
    )


def drop(conn: psycopg.Connection[Any], table: str, partition: Partition) -> None:
    """Detach and drop a partition whole: its rows leave no dead tuples to vacuum."""
    with _step(conn):
        conn.execute(
            sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(
                sql.Identifier(table), sql.Identifier(partition.name)
            )
        )
        conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(partition.name)))


def maintain(
    settings: Settings, now: datetime | None = None, dry_run: bool = False
) -> dict[str, Plan]:
    """Make, fill and drop what each table's plan says; return the plans (done unless dry)."""
    now = now or datetime.now(UTC)
    plans: dict[str, Plan] = {}
    try:
        with connect(settings) as conn:
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (_LOCK_KEY,)).fetchone()
            conn.commit()
            if not row or not row[0]:
                logger.info("partitions: another maintainer is at work; skipping this turn")
                return plans
            for table in TABLES:
                plans[table] = _maintain_table(conn, settings, table, now, dry_run)
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
            conn.commit()
    except psycopg.errors.InsufficientPrivilege as exc:
        raise PartitionError(
            f"{settings.postgres.user} may not make or drop partitions ({exc}): run "
            "`python -m stream partitions` as the tables' owner (the role that migrates)"
        ) from exc
    return plans


def _maintain_table(
    conn: psycopg.Connection[Any], settings: Settings, table: str, now: datetime, dry_run: bool
) -> Plan:
    found = partitions_of(conn, table)
    default = next((p for p in found if p.default), None)
    waiting = default_days(conn, default)
    conn.commit()
    todo = plan_for(
        found, waiting, now, settings.partition_days_ahead, retention_days(settings, table)
    )
    if dry_run:
        return todo
    for day in todo.create:
        moved = create_day(conn, table, day, default, day in waiting)
        if moved:
            logger.info("partitions: %s gets %d rows of %s from its default", table, moved, day)
    for partition in todo.drop:
        drop(conn, table, partition)
        logger.info("partitions: dropped %s (%s)", partition.name, _span(partition))
    if todo.delete_default_before is not None and default is not None:
        with _step(conn):
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE event_timestamp < %s").format(
                    sql.Identifier(default.name)
                ),
                (todo.delete_default_before,),
            )
    return todo


def _span(partition: Partition) -> str:
    start = "the beginning" if partition.start is None else f"{partition.start:%Y-%m-%d}"
    end = "on" if partition.end is None else f"{partition.end:%Y-%m-%d}"
    return f"{start} to {end}"


def keep_up(settings: Settings) -> threading.Thread | None:
    """Maintain now, then every `worker_partition_every_s` in a daemon thread (the worker's).

    A failure is logged, not raised: the DEFAULT partitions take every row meanwhile, so the
    worker writes on; `stream status` shows the rows waiting there.
    """

    def turn() -> None:
        try:
            maintain(settings)
        except (PartitionError, psycopg.Error) as exc:
            logger.warning("partitions not maintained: %s", exc)

    turn()
    every = settings.worker_partition_every_s
    if not every:
        return None

    def loop() -> None:
        while True:
            time.sleep(every)
            turn()

    thread = threading.Thread(target=loop, name="partitions", daemon=True)
    thread.start()
    return thread
