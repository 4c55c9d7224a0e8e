"""Feature snapshots into their Postgres tables, without Feast: the COPY-or-merge write.

One write serves two callers: Feast's offline store (stream/sinks/offline_store.py, rows from an
Arrow table as CSV) and the writer process's offline sink (`SnapshotSink`, rows typed by the
catalog, for a repository whose offline store is this project's Postgres one, `plain_postgres`),
which sends them in COPY's binary format: no float or timestamp is written or parsed as text.
Invariant: a write is idempotent on the snapshot key (user_id, event_timestamp): new rows go
straight in, and a batch meeting a key already there replaces what that key holds, so a retried
write adds no row. Importing this module does not import Feast, pandas or Arrow: the writer
process holds ~140 MiB less without them (docs/decisions/0021-compact-state.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import psycopg
from psycopg import sql

from stream.catalog import VIEWS, features_of, view
from stream.core.events import from_us
from stream.core.records import Row
from stream.errors import PushSourceError
from stream.settings import Settings
from stream.sinks.base import Flush, Replace, by_view

KEY_COLUMNS: Final = ("user_id", "event_timestamp")
# The offline store feature_store.yaml names for Postgres snapshot tables with writes.
STORE_TYPE: Final = "stream.sinks.offline_store.AuroraPostgreSQLOfflineStore"
# feature_store.yaml's offline store, as the settings fill it in (stream/featurestore/env.py).
_FROM_SETTINGS: Final = {
    "host": "${AURORA_PG_HOST}",
    "port": "${AURORA_PG_PORT}",
    "database": "${AURORA_PG_DATABASE}",
    "db_schema": "${AURORA_PG_SCHEMA}",
    "user": "${AURORA_PG_USER}",
    "password": "${AURORA_PG_PASSWORD}",
    "sslmode": "${AURORA_PG_SSLMODE}",
    "sslrootcert_path": "${AURORA_PG_SSLROOTCERT}",
}

# Feeds a COPY ... FROM STDIN of the batch's columns into the table it is given.
CopyInto = Callable[[psycopg.Cursor[Any], sql.Composable], None]


def copy_or_merge(
    conn: psycopg.Connection[Any], target: sql.Identifier, columns: Sequence[str], feed: CopyInto
) -> None:
    """Write a batch into `target`, replacing the rows of any key it already holds.

    Straight in first: new rows (all the stream writes) need no merge. A key already there (a
    retried write, a correction) refuses the COPY; then the rows go through a temporary table
    and replace what their keys hold. The connection is left usable, or closed when the server
    dropped it, so that the caller's next write (a retry) opens another.
    """
    updates = sql.SQL(", ").join(
        sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c))
        for c in columns
        if c not in KEY_COLUMNS
    )
    listed = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    merge = sql.SQL(
        "INSERT INTO {target} ({columns}) "
        # A batch may carry one key twice; ON CONFLICT may touch a row once per statement.
        "SELECT DISTINCT ON (user_id, event_timestamp) {columns} FROM _aurora_push "
        "ORDER BY user_id, event_timestamp "
        "ON CONFLICT (user_id, event_timestamp) DO UPDATE SET {updates}"
    ).format(target=target, columns=listed, updates=updates)
    try:
        try:
            with conn.cursor() as cur:
                feed(cur, target)
            conn.commit()
        except psycopg.errors.UniqueViolation:
            conn.rollback()
            with conn.cursor() as cur:
                cur.execute(
                    sql.SQL(
                        "CREATE TEMP TABLE _aurora_push (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP"
                    ).format(target)
                )
                feed(cur, sql.Identifier("_aurora_push"))
                cur.execute(merge)
            conn.commit()
    except BaseException as exc:
        # Nothing of this write may linger in a connection kept for the next one.
        if conn.broken or isinstance(exc, psycopg.OperationalError):
            conn.close()
        elif not conn.closed:
            try:
                conn.rollback()
            except psycopg.Error:
                conn.close()
        raise


def delete_range(conn: psycopg.Connection[Any], replace: Replace) -> None:
    """Delete, per view, these users' rows whose time is in the range (replay's rerun)."""
    start, end = from_us(replace.start_us), from_us(replace.end_us)
    try:
        with conn.transaction():
            for view_name, users in replace.users.items():
                conn.execute(
                    sql.SQL(
                        "DELETE FROM {} WHERE user_id = ANY(%s) "
                        "AND event_timestamp >= %s AND event_timestamp < %s"
                    ).format(sql.Identifier(view(view_name).table)),
                    (users, start, end),
                )
    except psycopg.OperationalError:
        conn.close()  # unusable after a server restart: the retry opens a new one
        raise


def plain_postgres(repo: Path) -> bool:
    """Whether the repository's offline store is this project's Postgres one, reached through
    the settings' Postgres (`AURORA_PG_*`) as `SnapshotSink` reaches it."""
    import yaml

    config = yaml.safe_load((repo / "feature_store.yaml").read_text())
    offline = config.get("offline_store") or {}
    return bool(
        isinstance(offline, dict)
        and offline.get("type") == STORE_TYPE
        and all(str(offline.get(k)) == v for k, v in _FROM_SETTINGS.items())
        and set(offline) <= {"type", "write_batch_rows", *_FROM_SETTINGS}
    )


class SnapshotSink:
    """Every row into its catalog view's snapshot table, by COPY, with no Feast in the process.

    The columns are the table's own, checked at set-up against the catalog's (user_id,
    event_timestamp, the view's features); the writer process uses this sink only once the
    registry's views are known to write the same tables (stream/featurestore/agreement.py).
    """

    name = "offline"

    def __init__(self, settings: Settings) -> None:
        self.conninfo = settings.postgres_conninfo()
        self.schema = settings.postgres_schema
        self.columns: dict[str, list[str]] = {}
        self.types: dict[str, list[str]] = {}  # each column's Postgres type, for a binary COPY
        self._conn: psycopg.Connection[Any] | None = None

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.conninfo, options=f"-c search_path={self.schema}")
        return self._conn

    def setup(self) -> None:
        conn = self._connection()
        for spec in VIEWS:
            typed = conn.execute(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = to_regclass(format('%%I.%%I', %s::text, %s::text)) "
                "AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                (self.schema, spec.table),
            ).fetchall()
            found = [name for name, _ in typed]
            given = {*KEY_COLUMNS, *(f.name for f in features_of(spec.name))}
            if set(found) != given:
                raise PushSourceError(
                    f"rows for {spec.name!r} do not match its table {self.schema}.{spec.table}: "
                    f"missing {sorted(set(found) - given)}, unexpected {sorted(given - set(found))}"
                )
            self.columns[spec.name] = found
            self.types[spec.name] = [kind for _, kind in typed]
        conn.commit()

    def write(self, flush: Flush) -> None:
        if flush.replace is not None:
            delete_range(self._connection(), flush.replace)
        if not flush.offline:
            return
        for view_name, rows in by_view(flush.rows).items():
            self.write_view(view_name, rows)

    def write_view(self, view_name: str, rows: Sequence[Row]) -> None:
        columns = self.columns[view_name]
        listed = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        # Each value's place in the table's column order, found once per write, not per row.
        user_at, time_at = columns.index("user_id"), columns.index("event_timestamp")
        features = [(i, c) for i, c in enumerate(columns) if c not in KEY_COLUMNS]

        def feed(cur: psycopg.Cursor[Any], into: sql.Composable) -> None:
            # Binary: a fifth of the client's CPU a row and four fifths of the server's, against
            # text (docs/decisions/0027-replay-per-event-costs.md).
            copy = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(into, listed)
            with cur.copy(copy) as out:
                out.set_types(self.types[view_name])
                line: list[Any] = [None] * len(columns)
                for row in rows:
                    line[user_at] = row.user_id
                    line[time_at] = from_us(row.row_us)
                    values = row.values
                    for at, name in features:
                        value = values[name]
                        # NaN is null, as in the Arrow table Feast makes of a DataFrame.
                        line[at] = None if value != value else value
                    out.write_row(line)

        copy_or_merge(self._connection(), sql.Identifier(view(view_name).table), columns, feed)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
