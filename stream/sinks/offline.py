"""The offline sink: every row into its view's Postgres snapshot table, through Feast.

Rows become the view's Arrow table (stream/sinks/feast_rows.py) and go through the provider's
`ingest_df_to_offline_store`, which is what `store.push(..., to=OFFLINE)` ends in: the
configured offline store's `offline_write_batch` (stream/sinks/offline_store.py). A flush that
replaces a range (replay) first deletes those users' rows in it, so a rerun adds nothing. Where
the offline store is this project's Postgres one, the writer process uses `SnapshotSink`
(stream/sinks/snapshots.py) instead, which needs no Feast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg

from stream.catalog import VIEWS, view
from stream.sinks.base import Flush, Replace, by_view
from stream.sinks.feast_rows import PushViews, offline_table
from stream.sinks.snapshots import delete_range

if TYPE_CHECKING:
    from feast import FeatureStore


class OfflineSink:
    name = "offline"

    def __init__(self, store: FeatureStore, conninfo: str, schema: str) -> None:
        self.views = PushViews(store)
        self.conninfo = conninfo
        self.schema = schema
        self._conn: psycopg.Connection[Any] | None = None

    def setup(self) -> None:
        for spec in VIEWS:
            for fv in self.views.of(spec.push_source):
                self.views.offline_columns(fv)

    def write(self, flush: Flush) -> None:
        if flush.replace is not None:
            self.delete(flush.replace)
        if not flush.offline:
            return
        provider = self.views.provider
        for view_name, rows in by_view(flush.rows).items():
            for fv in self.views.of(view(view_name).push_source):
                table = offline_table(fv, self.views.offline_columns(fv), rows)
                provider.ingest_df_to_offline_store(fv, table)

    def delete(self, replace: Replace) -> None:
        """Delete, per view, these users' rows whose time is in the range."""
        delete_range(self._connection(), replace)

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(
                self.conninfo, options=f"-c search_path={self.schema}", autocommit=True
            )
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
