"""Feast's push, with the registry read once instead of on every call.

`FeatureStore.push` looks up the push source's feature views, every on-demand view and every
feature service in the registry on each call, rebuilding them from protos with typeguard checks:
about 50 ms online and 20 ms offline per call, whatever the batch size (bench/README.md). The
worker pushes the same five sources all day, so `Pusher` resolves each source's feature views
once and then calls what `push` itself ends in: the provider's `ingest_df` (Feast's own row
conversion and online store write, with its older-row guard) and `ingest_df_to_offline_store`
(the configured offline store's `offline_write_batch`). Rows reach the same stores, the same way.

A registry change does not reach a running worker: the catalog is code, so a changed view means
a new deployment, which restarts the worker anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

if TYPE_CHECKING:
    from feast import FeatureStore
    from feast.feature_view import FeatureView


class PushSourceError(LookupError):
    """A push source the registry does not know, or whose views cannot take these columns."""


class Pusher:
    def __init__(self, store: FeatureStore) -> None:
        self.store = store
        self.provider: Any = store._get_provider()
        self._views: dict[str, list[FeatureView]] = {}
        self._offline_columns: dict[str, list[str]] = {}
        self._precompute: dict[str, bool] = {}

    def views(self, source: str) -> list[FeatureView]:
        views = self._views.get(source)
        if views is None:
            try:
                found = self.store._fvs_for_push_source_or_raise(source, allow_cache=True)
            except Exception as exc:  # Feast raises its own not-found type
                raise PushSourceError(f"push source {source!r}: {exc}") from exc
            views = self._views[source] = sorted(found, key=lambda v: v.name)  # type: ignore[arg-type]
            services = self.store.registry.list_feature_services(self.store.project)
            for fv in views:
                self._precompute[fv.name] = any(
                    s.precompute_online
                    and any(p.name == fv.name for p in s.feature_view_projections)
                    for s in services
                )
        return views

    def online(self, source: str, frame: pd.DataFrame) -> None:
        if frame.empty:
            return
        for fv in self.views(source):
            self.provider.ingest_df(fv, frame)
            if self._precompute[fv.name]:
                self.store._precompute_for_push(fv.name, frame)

    def offline(self, source: str, frame: pd.DataFrame) -> None:
        if frame.empty:
            return
        for fv in self.views(source):
            columns = self._columns_of(fv, list(frame.columns))
            table = pa.Table.from_pandas(frame[columns], preserve_index=False)
            self.provider.ingest_df_to_offline_store(fv, table)

    def _columns_of(self, fv: FeatureView, given: Sequence[str]) -> list[str]:
        """The batch source's columns, in its order, once we know `given` has exactly them."""
        columns = self._offline_columns.get(fv.name)
        if columns is None:
            if fv.batch_source is None:
                raise PushSourceError(f"feature view {fv.name!r} has no batch source")
            found = self.provider.get_table_column_names_and_types_from_data_source(
                self.store.config, fv.batch_source
            )
            columns = self._offline_columns[fv.name] = [name for name, _ in found]
        if set(columns) != set(given):
            raise PushSourceError(
                f"rows for {fv.name!r} do not match its table: "
                f"missing {sorted(set(columns) - set(given))}, "
                f"unexpected {sorted(set(given) - set(columns))}"
            )
        return columns
