"""Feast's PostgreSQL offline store, plus the offline writes it lacks (feast-dev/feast#3759).

feature_store.yaml selects it by class path, so `store.push(..., to=PushMode.OFFLINE)` and
`ONLINE_AND_OFFLINE` append feature snapshots to the view's Postgres table. Rows are streamed with
COPY straight into the table, or, when a key is already there, into a temporary table merged on
the snapshot key (user_id, event_timestamp): a retried push adds no row, and a row pushed again
with new values replaces the old one (stream/sinks/snapshots.py, shared with the writer's sink).
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable
from typing import Any, Literal

import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv
from feast.feature_view import FeatureView
from feast.infra.offline_stores.contrib.postgres_offline_store.postgres import (
    PostgreSQLOfflineStore,
    PostgreSQLOfflineStoreConfig,
)
from feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source import (
    PostgreSQLSource,
)
from feast.repo_config import RepoConfig
from psycopg import sql

from stream.errors import OfflineWriteError
from stream.featurestore.feast_adapter import postgres_connection, postgres_connection_key
from stream.sinks.snapshots import KEY_COLUMNS, copy_or_merge

logger = logging.getLogger(__name__)

_CSV_OPTIONS = pa_csv.WriteOptions(include_header=False)


# The open connection of each store config, per process. Feast opens one per write and closes
# it after: a connection (a Postgres backend started, TLS maybe, authentication) per view per
# flush, about a sixth of the writer process in a profile at 5,000 events/s.
_connections: dict[str, psycopg.Connection[Any]] = {}


def _connection(config: Any) -> psycopg.Connection[Any]:
    key = f"{os.getpid()} {postgres_connection_key(config)}"
    conn = _connections.get(key)
    if conn is None or conn.closed or conn.broken:
        conn = _connections[key] = postgres_connection(config)
    return conn


class AuroraPostgreSQLOfflineStoreConfig(PostgreSQLOfflineStoreConfig):
    # Feast finds a custom store's config class through the class path in `type`.
    type: Literal["stream.sinks.offline_store.AuroraPostgreSQLOfflineStore"] = (
        "stream.sinks.offline_store.AuroraPostgreSQLOfflineStore"  # type: ignore[assignment]
    )
    # Rows per COPY round; bounds the memory one transaction holds on the server.
    write_batch_rows: int = 50_000


class AuroraPostgreSQLOfflineStore(PostgreSQLOfflineStore):
    @staticmethod
    def offline_write_batch(
        config: RepoConfig,
        feature_view: FeatureView,
        table: pa.Table,
        progress: Callable[[int], Any] | None,
    ) -> None:
        source = feature_view.batch_source
        if not isinstance(source, PostgreSQLSource) or not source.get_table_query_string():
            raise OfflineWriteError(feature_view.name, "its batch source is not a Postgres table")
        missing = [c for c in KEY_COLUMNS if c not in table.column_names]
        if missing:
            raise OfflineWriteError(feature_view.name, f"rows lack the key columns {missing}")
        store_config = config.offline_store
        batch_rows = getattr(store_config, "write_batch_rows", 50_000)
        target = sql.Identifier(*source.get_table_query_string().split("."))
        columns = sql.SQL(", ").join(sql.Identifier(c) for c in table.column_names)

        csv_batches = []
        for batch in table.to_batches(max_chunksize=batch_rows):
            # Arrow writes the CSV in C++ (floats in their shortest exact form, strings quoted,
            # nulls as empty fields): a Python loop over every value took a third of the
            # writer's time.
            data = io.BytesIO()
            pa_csv.write_csv(pa.Table.from_batches([batch]), data, _CSV_OPTIONS)
            csv_batches.append(data)

        def copy_into(cur: Any, into: sql.Composable) -> None:
            copy = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(into, columns)
            for data in csv_batches:
                with cur.copy(copy) as writer:
                    writer.write(data.getbuffer())

        copy_or_merge(_connection(store_config), target, table.column_names, copy_into)
        if progress:
            progress(table.num_rows)  # once committed, whichever way the rows went in
        logger.debug("wrote %d rows to %s", table.num_rows, feature_view.name)
