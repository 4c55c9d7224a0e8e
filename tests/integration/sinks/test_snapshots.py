"""The offline sink without Feast stores exactly what Feast's offline write stores, merges a
retried write, survives a dropped connection; and the registry check that lets the writer use
it finds the registry to be the catalog, says so when it is not, and keeps its verdict only for
the registry it read."""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from feast import FeatureStore

from stream.catalog import EVENT_TYPES, VIEWS, features_of, view
from stream.core.ingest import Ingestor
from stream.core.records import Message, Row
from stream.errors import PushSourceError
from stream.featurestore import agreement
from stream.settings import Settings
from stream.sinks.base import Flush, Replace
from stream.sinks.offline import OfflineSink
from stream.sinks.snapshots import SnapshotSink
from stream.synth.generator import GeneratorConfig, generate


def _generated(name: str) -> list[dict[str, Any]]:
    """Each generated row's values of the view: the values the stream really makes."""
    config = GeneratorConfig(users=6, days=3, seed=35, start=datetime(2026, 11, 1, tzinfo=UTC))
    ingestor, _ = Ingestor.in_memory({t: t for t in EVENT_TYPES})
    messages = [
        Message(g.event_type or "activity", 0, i, g.key, g.raw)
        for i, g in enumerate(generate(config))
    ]
    return [r.values for r in ingestor.process(messages).rows if r.view == name][:20]


def _rows(name: str, user: str) -> list[Row]:
    """Generated values, then a row of nulls and one of NaN in every float field."""
    fields = features_of(name)
    values = [
        *_generated(name),
        {f.name: None for f in fields},
        {f.name: (math.nan if f.dtype == "float64" else None) for f in fields},
    ]
    return [Row(name, user, 1_764_000_000_000_000 + i * 1_000_001, v) for i, v in enumerate(values)]


def _stored(conn: psycopg.Connection[Any], name: str, user: str) -> list[tuple[Any, ...]]:
    fields = ", ".join(f.name for f in features_of(name))
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT event_timestamp, {fields} FROM {view(name).table} "
            "WHERE user_id = %s ORDER BY event_timestamp",
            (user,),
        )
        stored = cur.fetchall()
    conn.rollback()
    return stored


@pytest.fixture(scope="module")
def snapshot_sink(feast_settings: Settings) -> SnapshotSink:
    sink = SnapshotSink(feast_settings)
    sink.setup()
    return sink


@pytest.mark.parametrize("name", [v.name for v in VIEWS])
def test_the_snapshot_sink_stores_what_feasts_offline_write_stores(
    feature_store: FeatureStore,
    feast_settings: Settings,
    snapshot_sink: SnapshotSink,
    pg_conn: psycopg.Connection[Any],
    user_ids: Callable[[int], list[str]],
    name: str,
) -> None:
    feasts, ours = user_ids(2)
    conninfo = feast_settings.postgres_conninfo()
    through_feast = OfflineSink(feature_store, conninfo, feast_settings.postgres_schema)
    through_feast.write(Flush(_rows(name, feasts), online=False))
    snapshot_sink.write(Flush(_rows(name, ours), online=False))

    expected = _stored(pg_conn, name, feasts)
    assert len(expected) == len(_rows(name, feasts)) > 2
    assert _stored(pg_conn, name, ours) == expected
    assert all(v is None for r in expected[-2:] for v in r[1:])


def test_a_retried_write_adds_nothing_and_a_corrected_row_replaces_its_key(
    snapshot_sink: SnapshotSink,
    pg_conn: psycopg.Connection[Any],
    user_ids: Callable[[int], list[str]],
) -> None:
    name = "sleep_features"
    (user,) = user_ids(1)
    rows = _rows(name, user)
    snapshot_sink.write(Flush(rows, online=False))
    snapshot_sink.write(Flush(rows, online=False))  # the retry of a write that did commit
    assert len(_stored(pg_conn, name, user)) == len(rows)

    corrected = Row(name, user, rows[0].row_us, rows[1].values)
    snapshot_sink.write(Flush([corrected, *rows[2:4]], online=False))
    stored = _stored(pg_conn, name, user)
    assert len(stored) == len(rows)
    assert stored[0][1:] == stored[1][1:]


def test_a_replaced_range_is_deleted_before_the_rows_go_in(
    snapshot_sink: SnapshotSink,
    pg_conn: psycopg.Connection[Any],
    user_ids: Callable[[int], list[str]],
) -> None:
    name = "user_activity_features"
    (user,) = user_ids(1)
    rows = _rows(name, user)
    snapshot_sink.write(Flush(rows, online=False))
    end = rows[4].row_us
    again = Flush(rows[:2], online=False, replace=Replace(0, end, {name: [user]}))
    snapshot_sink.write(again)  # replay of rows 0-3: 2 and 3 are gone, 0 and 1 back
    assert len(_stored(pg_conn, name, user)) == len(rows) - 2


def test_a_dropped_connection_fails_one_write_and_the_retry_opens_another(
    snapshot_sink: SnapshotSink,
    pg_conn: psycopg.Connection[Any],
    user_ids: Callable[[int], list[str]],
) -> None:
    name = "user_activity_features"
    (user,) = user_ids(1)
    rows = _rows(name, user)
    snapshot_sink.write(Flush(rows[:1], online=False))
    assert snapshot_sink._conn is not None
    first = snapshot_sink._conn.info.backend_pid
    with pg_conn.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s)", (first,))
    pg_conn.rollback()
    with pytest.raises(psycopg.OperationalError):
        snapshot_sink.write(Flush(rows[1:2], online=False))  # stream.sinks.base retries it
    snapshot_sink.write(Flush(rows[1:2], online=False))
    assert snapshot_sink._conn.info.backend_pid != first
    assert len(_stored(pg_conn, name, user)) == 2


def test_a_table_without_the_catalogs_columns_is_refused(
    feast_settings: Settings, pg_conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import stream.sinks.snapshots as snapshots

    spec = view("sleep_features")
    # The catalog asks for a column the table lacks, as after a catalog change not migrated.
    odd = (*features_of(spec.name), replace(features_of(spec.name)[0], name="odd"))
    monkeypatch.setattr(
        snapshots, "features_of", lambda name: odd if name == spec.name else features_of(name)
    )
    with pytest.raises(PushSourceError, match="odd"):
        SnapshotSink(feast_settings).setup()


def test_the_registry_agrees_with_the_catalog(feast_settings: Settings) -> None:
    # Through the child process, as the writer asks: Feast stays out of this process's answer.
    assert agreement.check(feast_settings, online=True, offline=True) == []


def test_a_registry_that_is_not_the_catalog_is_named(
    feast_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    moved = tuple(replace(v, table="elsewhere") if v.name == "sleep_features" else v for v in VIEWS)
    monkeypatch.setattr(agreement, "VIEWS", moved)
    found = agreement.disagreements(feast_settings, online=False, offline=True)
    assert found == ["offline: sleep_features writes 'sleep_features', not 'elsewhere'"]


def test_a_verdict_is_kept_for_its_registry_alone(
    feast_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = tmp_path / "registry.db"
    shutil.copyfile(feast_settings.feast_registry_path, registry)
    settings = feast_settings.model_copy(
        update={"stack_dir": tmp_path / "stack", "feast_registry_path": str(registry)}
    )
    assert agreement.check(settings, online=True, offline=True) == []  # Feast's, in a child
    asked: list[bool] = []

    def in_child(settings: Settings, *, online: bool, offline: bool) -> list[str]:
        asked.append(online)
        return ["online: differs"]

    monkeypatch.setattr(agreement, "_check_in_child", in_child)
    # The same registry, stores and catalog: the kept verdict, no child.
    assert agreement.check(settings, online=True, offline=True) == []
    assert asked == []
    # Other sinks asked about, or another registry (a `feast apply`): checked again.
    assert agreement.check(settings, online=False, offline=True) == ["online: differs"]
    registry.write_bytes(registry.read_bytes() + b"\0")
    assert agreement.check(settings, online=True, offline=True) == ["online: differs"]
    assert asked == [False, True]
    # A SQL registry is Feast's to read: never kept.
    sql_registry = settings.model_copy(update={"feast_registry_type": "sql"})
    assert agreement.verdict_key(sql_registry, online=True, offline=True) is None
