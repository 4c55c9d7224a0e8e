"""The direct row conversion makes exactly what Feast's own conversion makes of the same rows,
the direct Redis write stores exactly what Feast's Redis store writes, and the rows read back
through Feast, online and offline."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import psycopg
import pyarrow as pa
import pytest
from feast import FeatureStore, Field
from feast.feature_view import FeatureView
from feast.infra.online_stores.helpers import _redis_key
from feast.infra.passthrough_provider import PassthroughProvider
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value
from feast.types import Bool
from feast.utils import make_tzaware
from google.protobuf.timestamp_pb2 import Timestamp

from stream.catalog import EVENT_TYPES, VIEWS, features_of, view
from stream.core.events import from_us
from stream.core.ingest import Ingestor
from stream.core.records import Message, Row
from stream.errors import PushSourceError
from stream.settings import Settings
from stream.sinks import offline_store
from stream.sinks.base import Flush, by_view, latest_per_user
from stream.sinks.feast_rows import frame, offline_table, online_rows
from stream.sinks.offline import OfflineSink
from stream.sinks.online import OnlineSink
from stream.sinks.redis_rows import RedisOnlineSink, RedisRows, plain_redis
from stream.synth.generator import GeneratorConfig, generate


def _generated_rows() -> dict[str, list[Row]]:
    """Rows of every view from a generated stream, late and duplicate events included."""
    config = GeneratorConfig(
        users=40,
        days=3,
        seed=11,
        start=datetime(2026, 3, 1, tzinfo=UTC),
        out_of_order=0.05,
        duplicates=0.02,
    )
    ingestor, _ = Ingestor.in_memory({t: t for t in EVENT_TYPES})
    messages = [
        Message(g.event_type or "activity", 0, i, g.key, g.raw)
        for i, g in enumerate(generate(config))
    ]
    return by_view(ingestor.process(messages).rows)


def _with_nulls(name: str, user: str = "u-null") -> list[Row]:
    """A row whose every field is null, then one with NaN in every float field."""
    fields = features_of(name)
    nulls = Row(name, user, 1_764_000_000_000_001, {f.name: None for f in fields})
    nans = {f.name: (math.nan if f.dtype == "float64" else None) for f in fields}
    return [nulls, Row(name, user, 1_764_000_000_999_999, nans)]


ROWS = _generated_rows()


@pytest.fixture(scope="module")
def online_sink(feature_store: FeatureStore) -> OnlineSink:
    return OnlineSink(feature_store)


@pytest.fixture(scope="module")
def offline_sink(feature_store: FeatureStore, feast_settings: Settings) -> OfflineSink:
    conninfo = feast_settings.postgres_conninfo()
    return OfflineSink(feature_store, conninfo, feast_settings.postgres_schema)


def _registered(online_sink: OnlineSink, name: str) -> FeatureView:
    (fv,) = online_sink.views.of(view(name).push_source)
    return fv


def test_the_generated_stream_covers_every_view() -> None:
    assert set(ROWS) == {v.name for v in VIEWS}
    # Some fields are null in some rows (a mean over no events, say): both paths must agree.
    assert any(v is None for rows in ROWS.values() for r in rows for v in r.values.values())


@pytest.mark.parametrize("name", [v.name for v in VIEWS])
def test_online_rows_equal_feasts_conversion(online_sink: OnlineSink, name: str) -> None:
    fv = _registered(online_sink, name)
    rows = ROWS[name] + _with_nulls(name)
    feasts = PassthroughProvider._prep_rows_to_write_for_ingestion(fv, frame(name, rows))
    ours = online_rows(fv, rows)
    assert len(ours) == len(feasts) == len(rows)
    for (key, values, when, created), (f_key, f_values, f_when, f_created) in zip(
        ours, feasts, strict=True
    ):
        assert key == f_key
        assert values == f_values
        assert list(values) == list(f_values)  # the same fields, in the view's order
        # Feast hands its stores naive UTC times and makes them aware there; ours are aware.
        assert when == make_tzaware(f_when) and when.tzinfo is not None
        assert created is f_created is None


@pytest.mark.parametrize("name", [v.name for v in VIEWS])
def test_offline_table_equals_the_pushed_frame(online_sink: OnlineSink, name: str) -> None:
    fv = _registered(online_sink, name)
    rows = ROWS[name] + _with_nulls(name)
    columns = ["event_timestamp", "user_id", *reversed([f.name for f in features_of(name)])]
    ours = offline_table(fv, columns, rows)
    theirs = pa.Table.from_pandas(frame(name, rows)[columns], preserve_index=False)
    assert ours.column_names == columns
    for column in columns:
        expected = theirs.column(column)
        if pa.types.is_timestamp(expected.type):
            expected = expected.cast(pa.timestamp("us", tz="UTC"))
        assert ours.column(column).to_pylist() == expected.to_pylist(), column


@pytest.mark.parametrize("name", [v.name for v in VIEWS])
def test_pushed_rows_read_back_online_and_offline(
    feature_store: FeatureStore,
    online_sink: OnlineSink,
    offline_sink: OfflineSink,
    pg_conn: psycopg.Connection[Any],
    user_ids: Callable[[int], list[str]],
    name: str,
) -> None:
    (user,) = user_ids(1)
    generated = ROWS[name][0]
    rows = [Row(name, user, 1_764_000_000_000_000, generated.values), *_with_nulls(name, user)]
    online_sink.write_view(name, rows[:1])
    offline_sink.write(Flush(rows, online=False))

    fields = [f.name for f in features_of(name)]
    online = feature_store.get_online_features(
        features=[f"{name}:{f}" for f in fields], entity_rows=[{"user_id": user}]
    ).to_dict()
    assert {f: online[f][0] for f in fields} == generated.values

    # Redis keeps the newest row: the null row is newer, so it replaces every value.
    online_sink.write_view(name, latest_per_user(rows))
    online = feature_store.get_online_features(
        features=[f"{name}:{f}" for f in fields], entity_rows=[{"user_id": user}]
    ).to_dict()
    assert all(online[f][0] is None for f in fields)

    with pg_conn.cursor() as cur:
        cur.execute(
            f"SELECT event_timestamp, {', '.join(fields)} FROM {view(name).table} "
            "WHERE user_id = %s ORDER BY event_timestamp",
            (user,),
        )
        stored = cur.fetchall()
    pg_conn.rollback()
    assert [r[0] for r in stored] == [from_us(r.row_us) for r in rows]
    assert dict(zip(fields, stored[0][1:], strict=True)) == generated.values
    assert all(v is None for r in stored[1:] for v in r[1:])


def test_a_view_with_a_field_of_another_type_is_refused(online_sink: OnlineSink) -> None:
    fv = copy.copy(_registered(online_sink, "sleep_features"))
    fv.features = [*fv.features, Field(name="odd", dtype=Bool)]
    with pytest.raises(PushSourceError, match="odd"):
        online_rows(fv, ROWS["sleep_features"][:1])


def test_offline_writes_keep_one_connection_and_replace_a_dropped_one(
    offline_sink: OfflineSink,
    pg_conn: psycopg.Connection[Any],
    user_ids: Callable[[int], list[str]],
) -> None:
    name = "user_activity_features"
    (user,) = user_ids(1)
    values = ROWS[name][0].values

    def write(row_us: int) -> int:
        """Write one row; return the server process of the connection that wrote it."""
        offline_sink.write(Flush([Row(name, user, row_us, values)], online=False))
        (conn,) = [c for c in offline_store._connections.values() if not c.closed]
        return conn.info.backend_pid

    def alive(pid: int) -> bool:
        with pg_conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
            found = cur.fetchone()
        pg_conn.rollback()
        return found == (1,)

    first = write(1_764_000_000_000_000)
    assert write(1_764_000_000_000_001) == first and alive(first)

    with pg_conn.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s)", (first,))
    pg_conn.rollback()
    with pytest.raises(psycopg.OperationalError):
        write(1_764_000_000_000_002)  # the writer's retry (stream.sinks.base) covers this one
    second = write(1_764_000_000_000_002)
    assert second != first and alive(second)

    with pg_conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {view(name).table} WHERE user_id = %s", (user,))
        assert cur.fetchone() == (3,)
    pg_conn.rollback()


def _stored(client: Any, project: str, users: list[str], ts_key: bytes) -> list[dict[bytes, Any]]:
    """Each user's Redis hash as Feast keys it, its event time decoded for a readable diff."""
    hashes = []
    for user in users:
        key = _redis_key(
            project, EntityKey(join_keys=["user_id"], entity_values=[Value(string_val=user)])
        )
        stored: dict[bytes, Any] = client.hgetall(key)
        if ts_key in stored:
            stored[ts_key] = Timestamp.FromString(stored[ts_key]).ToJsonString()
        hashes.append(stored)
    return hashes


@pytest.fixture(scope="module")
def cluster_online_sink(cluster_store: FeatureStore) -> OnlineSink:
    return OnlineSink(cluster_store)


@pytest.mark.parametrize("store", ["redis", "redis_cluster"])
@pytest.mark.parametrize("name", [v.name for v in VIEWS])
def test_the_direct_redis_write_stores_what_feasts_write_stores(
    request: pytest.FixtureRequest, user_ids: Callable[[int], list[str]], name: str, store: str
) -> None:
    """On one node and on the cluster, where the direct write goes through redis-py's cluster
    pipeline (each node's keys in one round trip) and Feast's through its own."""
    fixture = "cluster_online_sink" if store == "redis_cluster" else "online_sink"
    online_sink: OnlineSink = request.getfixturevalue(fixture)
    fv = _registered(online_sink, name)
    direct = online_sink.direct_writer(fv)
    assert direct is not None, "the test stack's online store is Redis: the direct write applies"
    cluster = online_sink.views.provider.repo_config.online_store.redis_type == "redis_cluster"
    assert cluster == (store == "redis_cluster")
    (base,) = user_ids(1)
    # Out of order within a user, one instant twice with other values, a null row: what the
    # older-row guard must sort out the same way. Non-ASCII ids test the key's encoding.
    generated = ROWS[name][:60] + _with_nulls(name)
    same_instant = replace(generated[0], values=generated[-3].values)
    # A newer row, then an older one, of a user with nothing stored yet: the newer one stays.
    newer, older = _with_nulls(name, "u-newer-first")[::-1]
    batches = [[*generated, newer, older], [same_instant, *reversed(generated[:20])]]
    generated += [newer, older]
    originals = sorted({r.user_id for r in generated})
    theirs = {u: f"{base}-feast-é-{u}" for u in originals}
    ours = {u: f"{base}-ours-é-{u}" for u in originals}
    config = online_sink.views.provider.repo_config
    for batch in batches:
        online_sink.views.provider.online_write_batch(
            config,
            fv,
            online_rows(fv, [replace(r, user_id=theirs[r.user_id]) for r in batch]),
            None,
        )
        direct([replace(r, user_id=ours[r.user_id]) for r in batch])

    client = online_sink.views.provider.online_store._get_client(config.online_store)
    ts_key = f"_ts:{name}".encode()
    expected = _stored(client, config.project, [theirs[u] for u in originals], ts_key)
    assert all(expected), "Feast's write left a user without a hash"
    assert _stored(client, config.project, [ours[u] for u in originals], ts_key) == expected


def test_the_direct_redis_write_sets_the_configured_ttl(
    online_sink: OnlineSink, user_ids: Callable[[int], list[str]]
) -> None:
    name = "sleep_features"
    fv = _registered(online_sink, name)
    config = online_sink.views.provider.repo_config
    client = online_sink.views.provider.online_store._get_client(config.online_store)
    layout = RedisRows.from_feast(config, fv, "user_id")
    (user,) = user_ids(1)
    row = replace(ROWS[name][0], user_id=user)
    assert layout.write(client, [row], ttl_s=600, dedup=True) == 1
    assert 0 < client.ttl(layout.key(user)) <= 600
    # The same row again is not newer than itself: skipped, as Feast skips it.
    assert layout.write(client, [row], ttl_s=600, dedup=True) == 0


def test_the_catalogs_redis_layout_is_feasts(
    online_sink: OnlineSink, feast_settings: Settings
) -> None:
    """What the writer process writes before Feast is loaded is what Feast itself lays out."""
    assert plain_redis(feast_settings.feast_repo_path, feast_settings.redis.cluster)
    quick = RedisOnlineSink(feast_settings)
    try:
        quick.setup()
        assert online_sink.same_as(quick)
        config = online_sink.views.provider.repo_config
        for name in (v.name for v in VIEWS):
            theirs = RedisRows.from_feast(config, _registered(online_sink, name), "user_id")
            assert quick.writers[name].layout.same_as(theirs)
        # A layout that differs is noticed: Feast's write then takes over.
        wrong = RedisRows.from_catalog("another_project", "sleep_features")
        assert not wrong.same_as(quick.writers["sleep_features"].layout)
    finally:
        quick.close()
