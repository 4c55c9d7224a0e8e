"""Rows as Feast's stores take them, typed by the registered views themselves.

`store.push` turns rows into a DataFrame, then Arrow, then one protobuf Value per field through
Feast's type inference: two fifths of the writer process. The rows here are typed by the views'
own fields, so each Value is made directly and the offline table is built as Arrow columns
(docs/decisions/0004-rows-straight-to-the-stores.md). tests/integration/sinks/test_feast_rows.py
holds both to what Feast's own conversion makes of the same rows. `PushViews` resolves each push
source's views once: a changed registry reaches a worker when it restarts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import pandas as pd
import pyarrow as pa
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value
from feast.value_type import ValueType

from stream.catalog import features_of
from stream.core.events import from_us
from stream.core.records import Row
from stream.errors import PushSourceError
from stream.featurestore.feast_adapter import provider, push_source_views

if TYPE_CHECKING:
    from feast import FeatureStore
    from feast.feature_view import FeatureView

# A feature row as Feast's online stores take it: entity key, values, event time, created time.
OnlineRow = tuple[EntityKey, dict[str, Value], datetime, None]

_NULL: Final = Value()  # an unset Value is Feast's null; stores only serialise it


def _int64(value: Any) -> Value:
    return _NULL if value is None else Value(int64_val=value)


def _double(value: Any) -> Value:
    # NaN is null, as Arrow makes it of a pandas float column in Feast's own conversion.
    return _NULL if value is None or value != value else Value(double_val=value)


def _string(value: Any) -> Value:
    return _NULL if value is None else Value(string_val=value)


_MAKERS: Final[dict[ValueType, Callable[[Any], Value]]] = {
    ValueType.INT64: _int64,
    ValueType.DOUBLE: _double,
    ValueType.STRING: _string,
}
_ARROW: Final[dict[ValueType, pa.DataType]] = {
    ValueType.INT64: pa.int64(),
    ValueType.DOUBLE: pa.float64(),
    ValueType.STRING: pa.string(),
}


def frame(view_name: str, rows: Sequence[Row]) -> pd.DataFrame:
    """Rows of one view as the DataFrame `store.push` takes: entity, timestamp, every field."""
    names = [f.name for f in features_of(view_name)]
    columns: dict[str, list[Any]] = {
        "user_id": [row.user_id for row in rows],
        "event_timestamp": [from_us(row.row_us) for row in rows],
    }
    for name in names:
        columns[name] = [row.values[name] for row in rows]
    return pd.DataFrame(columns, columns=["user_id", "event_timestamp", *names])


def _fields(fv: FeatureView) -> list[tuple[str, ValueType]]:
    fields = [(f.name, f.dtype.to_value_type()) for f in fv.features]
    unsupported = [name for name, kind in fields if kind not in _MAKERS]
    if unsupported:
        raise PushSourceError(f"feature view {fv.name!r}: no direct conversion for {unsupported}")
    return fields


def join_key(fv: FeatureView) -> str:
    keys = [(e.name, e.dtype.to_value_type()) for e in fv.entity_columns]
    if len(keys) != 1 or keys[0][1] is not ValueType.STRING:
        raise PushSourceError(f"feature view {fv.name!r}: one string join key expected, {keys}")
    return keys[0][0]


def online_rows(fv: FeatureView, rows: Sequence[Row]) -> list[OnlineRow]:
    """Rows as Feast's online stores take them, typed by the view's own fields."""
    makers = [(name, _MAKERS[kind]) for name, kind in _fields(fv)]
    keys = [join_key(fv)]
    return [
        (
            EntityKey(join_keys=keys, entity_values=[Value(string_val=row.user_id)]),
            {name: make(row.values[name]) for name, make in makers},
            from_us(row.row_us),
            None,
        )
        for row in rows
    ]


def offline_table(fv: FeatureView, columns: Sequence[str], rows: Sequence[Row]) -> pa.Table:
    """Rows as the Arrow table of the view's batch source, its columns in `columns` order."""
    types = {name: _ARROW[kind] for name, kind in _fields(fv)}
    key = join_key(fv)
    timestamp = fv.batch_source.timestamp_field if fv.batch_source else "event_timestamp"
    arrays = []
    for name in columns:
        if name == key:
            arrays.append(pa.array([row.user_id for row in rows], pa.string()))
        elif name == timestamp:
            arrays.append(pa.array([row.row_us for row in rows], pa.timestamp("us", tz="UTC")))
        elif name in types:
            # from_pandas: NaN is null, as in the Arrow table Feast makes of a DataFrame.
            values = [row.values[name] for row in rows]
            arrays.append(pa.array(values, types[name], from_pandas=True))
        else:
            raise PushSourceError(f"rows for {fv.name!r} have no column {name!r}")
    return pa.Table.from_arrays(arrays, names=list(columns))


class PushViews:
    """Each push source's feature views, the offline columns and on-demand precomputes of each
    view: looked up in the registry once, not on every write as `store.push` does."""

    def __init__(self, store: FeatureStore) -> None:
        self.store = store
        self.provider: Any = provider(store)
        self._views: dict[str, list[FeatureView]] = {}
        self._offline_columns: dict[str, list[str]] = {}
        self._precompute: dict[str, bool] = {}

    def of(self, source: str) -> list[FeatureView]:
        views = self._views.get(source)
        if views is None:
            try:
                found = push_source_views(self.store, source)
            except Exception as exc:  # Feast raises its own not-found type
                raise PushSourceError(f"push source {source!r}: {exc}") from exc
            views = self._views[source] = found
            services = self.store.registry.list_feature_services(self.store.project)
            for fv in views:
                self._precompute[fv.name] = any(
                    s.precompute_online
                    and any(p.name == fv.name for p in s.feature_view_projections)
                    for s in services
                )
        return views

    def precomputes(self, fv: FeatureView) -> bool:
        """Whether a feature service precomputes on-demand features of this view on push."""
        return self._precompute[fv.name]

    def offline_columns(self, fv: FeatureView) -> list[str]:
        """The batch source's columns, in its order, once we know the view has exactly them."""
        columns = self._offline_columns.get(fv.name)
        if columns is None:
            if fv.batch_source is None:
                raise PushSourceError(f"feature view {fv.name!r} has no batch source")
            found = self.provider.get_table_column_names_and_types_from_data_source(
                self.store.config, fv.batch_source
            )
            given = {join_key(fv), fv.batch_source.timestamp_field, *(f.name for f in fv.features)}
            columns = [name for name, _ in found]
            if set(columns) != given:
                raise PushSourceError(
                    f"rows for {fv.name!r} do not match its table: "
                    f"missing {sorted(set(columns) - given)}, "
                    f"unexpected {sorted(given - set(columns))}"
                )
            self._offline_columns[fv.name] = columns
        return columns
