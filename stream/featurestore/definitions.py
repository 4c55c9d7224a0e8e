"""Feast objects built from the feature catalog, so the views can never drift from it."""

from __future__ import annotations

from typing import Final

from feast import Entity, FeatureView, Field, PushSource
from feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source import (
    PostgreSQLSource,
)
from feast.types import Float64, Int64, PrimitiveFeastType, String

from stream.catalog import FeatureSpec, ViewSpec, features_of

OWNER: Final = "ml-platform@aurora.life"
FEAST_TYPES: Final[dict[str, PrimitiveFeastType]] = {
    "int64": Int64,
    "float64": Float64,
    "string": String,
}


def feast_type(spec: FeatureSpec) -> PrimitiveFeastType:
    return FEAST_TYPES[spec.dtype]


def field_description(spec: FeatureSpec) -> str:
    unit = f" [{spec.unit}]" if spec.unit else ""
    return f"{spec.definition}{unit} Window: {spec.window.value}."


def fields_of(view: ViewSpec) -> list[Field]:
    return [
        Field(name=f.name, dtype=feast_type(f), description=field_description(f))
        for f in features_of(view.name)
    ]


def batch_source(view: ViewSpec) -> PostgreSQLSource:
    """The Postgres table holding the view's feature snapshots (made by the migrations)."""
    return PostgreSQLSource(
        name=f"{view.table}_snapshots",
        table=view.table,
        timestamp_field="event_timestamp",
        description=f"Snapshots of {view.name}, one row per (user_id, event_timestamp).",
        owner=OWNER,
    )


def push_source(view: ViewSpec) -> PushSource:
    return PushSource(
        name=view.push_source,
        batch_source=batch_source(view),
        description=f"Rows the stream workers push for {view.name}.",
        owner=OWNER,
    )


def feature_view(view: ViewSpec, user: Entity, source: PushSource) -> FeatureView:
    events = ", ".join(view.events)
    return FeatureView(
        name=view.name,
        entities=[user],
        ttl=view.ttl,
        schema=fields_of(view),
        source=source,
        online=True,
        description=view.description,
        owner=OWNER,
        tags={"team": "ml-platform", "source_events": events, "pipeline": "aurora-stream"},
    )
