"""The Feast repository against real Redis and Postgres: definitions, pushes, time travel."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import psycopg
import pytest
from feast import FeatureStore
from feast.data_source import PushMode

from stream.catalog import VIEWS, features_of, view
from stream.featurestore.definitions import FEAST_TYPES
from stream.settings import Settings
from tests import contract
from tests.integration.helpers import run_stream, snapshot_rows

NOW = datetime.now(UTC).replace(microsecond=0)


def test_plan_and_lists_show_exactly_the_catalog(feast_settings: Settings) -> None:
    plan = run_stream(feast_settings, "feast", "plan")
    assert plan.returncode == 0, plan.stderr
    views = run_stream(feast_settings, "feast", "feature-views", "list")
    assert views.returncode == 0, views.stderr
    listed = {line.split()[0] for line in views.stdout.splitlines()[1:] if line.strip()}
    assert listed == set(contract.VIEWS) | set(contract.ON_DEMAND)
    services = run_stream(feast_settings, "feast", "feature-services", "list")
    assert services.returncode == 0, services.stderr
    listed = {line.split()[0] for line in services.stdout.splitlines()[1:] if line.strip()}
    assert listed == set(contract.SERVICES)


def test_registered_views_are_the_catalog(feature_store: FeatureStore) -> None:
    registered = {fv.name: fv for fv in feature_store.list_feature_views()}
    assert set(registered) == {v.name for v in VIEWS}
    for spec in VIEWS:
        fv = registered[spec.name]
        assert fv.ttl == spec.ttl
        assert fv.entities == ["user"]
        assert fv.owner and fv.tags and fv.description
        assert [(f.name, f.dtype) for f in fv.features] == [
            (f.name, FEAST_TYPES[f.dtype]) for f in features_of(spec.name)
        ]
        assert all(f.description for f in fv.features), spec.name
        assert fv.stream_source is not None and fv.stream_source.name == spec.push_source
    odfvs = {
        v.name: [f.name for f in v.features] for v in feature_store.list_on_demand_feature_views()
    }
    assert odfvs == contract.ON_DEMAND


def test_services_hold_exactly_the_catalog_contents(feature_store: FeatureStore) -> None:
    services = {s.name: s for s in feature_store.list_feature_services()}
    assert set(services) == set(contract.SERVICES)
    for name, expected in contract.SERVICES.items():
        assert [p.name for p in services[name].feature_view_projections] == expected


def test_snapshot_tables_match_the_catalog(pg_conn: psycopg.Connection[Any]) -> None:
    pg_types = {"int64": "bigint", "float64": "double precision", "string": "text"}
    with pg_conn.cursor() as cur:
        for spec in VIEWS:
            cur.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
                (spec.table,),
            )
            expected = [("user_id", "text"), ("event_timestamp", "timestamp with time zone")]
            expected += [(f.name, pg_types[f.dtype]) for f in features_of(spec.name)]
            assert cur.fetchall() == expected


def _offline_rows(conn: psycopg.Connection[Any], table: str, users: list[str]) -> list[Any]:
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT * FROM {table} WHERE user_id = ANY(%s) ORDER BY user_id, event_timestamp",
            (users,),
        )
        rows = cur.fetchall()
    conn.rollback()
    return rows


@pytest.mark.parametrize("view_name", [v.name for v in VIEWS])
def test_push_online_and_offline_lands_once(
    feature_store: FeatureStore,
    pg_conn: psycopg.Connection[Any],
    user_ids: Callable[[int], list[str]],
    view_name: str,
) -> None:
    users = user_ids(3)
    spec = view(view_name)
    rows = snapshot_rows(view_name, users, NOW, base=7)
    for _ in range(3):  # a retried push must add nothing
        feature_store.push(spec.push_source, rows, to=PushMode.ONLINE_AND_OFFLINE)

    stored = _offline_rows(pg_conn, spec.table, users)
    assert len(stored) == len(users)
    expected = rows.to_dict("records")
    for got, want in zip(stored, expected, strict=True):
        assert got[0] == want["user_id"] and got[1] == want["event_timestamp"]
        assert list(got[2:]) == [want[f.name] for f in features_of(view_name)]

    refs = [f"{view_name}:{f.name}" for f in features_of(view_name)]
    online = feature_store.get_online_features(
        features=refs, entity_rows=[{"user_id": u} for u in users]
    ).to_dict()
    for spec_f in features_of(view_name):
        assert online[spec_f.name] == rows[spec_f.name].tolist(), spec_f.name


def test_a_corrected_push_replaces_the_offline_row(
    feature_store: FeatureStore,
    pg_conn: psycopg.Connection[Any],
    user_ids: Callable[[int], list[str]],
) -> None:
    users = user_ids(1)
    feature_store.push(
        "sleep_push", snapshot_rows("sleep_features", users, NOW, 1), to=PushMode.OFFLINE
    )
    fixed = snapshot_rows("sleep_features", users, NOW, 5)
    feature_store.push("sleep_push", fixed, to=PushMode.OFFLINE)
    stored = _offline_rows(pg_conn, "sleep_features", users)
    assert len(stored) == 1
    assert stored[0][2] == fixed["avg_sleep_duration_7d"][0]


def test_historical_features_are_point_in_time_correct(
    feature_store: FeatureStore, user_ids: Callable[[int], list[str]]
) -> None:
    (user,) = user_ids(1)
    t0 = NOW - timedelta(days=3)
    t1 = t0 + timedelta(hours=2)
    pushed = {}
    for at, base in ((t0, 10.0), (t1, 20.0)):
        rows = snapshot_rows("integration_features", [user], at, base)
        feature_store.push("integration_push", rows, to=PushMode.OFFLINE)
        pushed[at] = rows["avg_heart_rate_7d"][0]
    ttl = view("integration_features").ttl  # 6 hours
    probes = {
        t0 - timedelta(seconds=1): None,  # before any row: nothing from the future
        t0: pushed[t0],
        t0 + timedelta(hours=1): pushed[t0],
        t1: pushed[t1],
        t1 + ttl - timedelta(seconds=1): pushed[t1],
        t1 + ttl + timedelta(seconds=1): None,  # past the TTL
    }
    entity_df = pd.DataFrame({"user_id": [user] * len(probes), "event_timestamp": list(probes)})
    result = (
        feature_store.get_historical_features(
            entity_df=entity_df, features=["integration_features:avg_heart_rate_7d"]
        )
        .to_df()
        .sort_values("event_timestamp")
    )
    got = [None if pd.isna(v) else v for v in result["avg_heart_rate_7d"]]
    assert got == list(probes.values())


def test_feature_services_with_request_data(
    feature_store: FeatureStore, user_ids: Callable[[int], list[str]]
) -> None:
    users = user_ids(2)
    for spec in VIEWS:
        feature_store.push(
            spec.push_source, snapshot_rows(spec.name, users[:1], NOW, 0.5), to=PushMode.ONLINE
        )
    rows = [{"user_id": u, "current_hour": 14, "day_of_week": 3, "is_weekend": 0} for u in users]
    energy = feature_store.get_online_features(
        features=feature_store.get_feature_service("energy_prediction_v1"), entity_rows=rows
    ).to_dict()
    assert all(1 <= v <= 10 for v in energy["predicted_energy"])
    # The second user has no features at all: a prediction still comes, with less confidence.
    assert energy["energy_confidence"][1] < energy["energy_confidence"][0]
    dashboard = feature_store.get_online_features(
        features=feature_store.get_feature_service("wellness_dashboard_v1"),
        entity_rows=[{"user_id": u} for u in users],
    ).to_dict()
    assert dashboard["wellness_trend"][0] in contract.WELLNESS_TRENDS
    assert dashboard["wellness_score"][1] is None
    training = feature_store.get_online_features(
        features=feature_store.get_feature_service("ml_training_v1"),
        entity_rows=[{"user_id": users[0]}],
    ).to_dict()
    assert not {"predicted_energy", "predicted_mood", "wellness_score"} & set(training)


def test_the_sql_registry_serves_several_processes(settings: Settings) -> None:
    shared = settings.model_copy(
        update={"feast_registry_type": "sql", "feast_project": f"aurora_sql_{NOW:%H%M%S%f}"}
    )
    applied = run_stream(shared, "feast", "apply")
    assert applied.returncode == 0, applied.stderr
    # A second process, with no registry file anywhere, reads the same definitions from Postgres.
    listed = run_stream(shared, "feast", "feature-services", "list")
    assert listed.returncode == 0, listed.stderr
    assert {line.split()[0] for line in listed.stdout.splitlines()[1:]} == set(contract.SERVICES)
    with psycopg.connect(shared.postgres_conninfo()) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM feature_services WHERE project_id = %s", (shared.feast_project,)
        )
        row = cur.fetchone()
    assert row is not None and row[0] == len(contract.SERVICES)
