"""The writer process against the real stores: a flush's rows online and offline and its raw
events archived, and a flush that fails reported only once every part of it has finished."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from feast import FeatureStore

from stream.catalog import EVENT_TYPES, features_of, view
from stream.core.ingest import Ingestor
from stream.core.records import ArchiveRow, Message, Row
from stream.settings import Settings
from stream.sinks import writer
from stream.sinks.base import Flush, by_view, latest_per_user
from stream.synth.generator import GeneratorConfig, generate
from tests.integration.sinks.writer_probe import heavy_modules_loaded

NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def writer_process(feast_settings: Settings) -> Iterator[ProcessPoolExecutor]:
    pool = writer.start(feast_settings)
    yield pool
    pool.shutdown()


def _flush(unique: str) -> tuple[list[ArchiveRow], list[Row]]:
    """A flush of generated events of users of this test: its archive rows and feature rows."""
    seed = int(unique[1:9], 16)
    start = NOW - timedelta(days=2)
    config = GeneratorConfig(users=4, days=2, seed=seed, start=start, user_prefix=unique)
    ingestor, _ = Ingestor.in_memory({t: t for t in EVENT_TYPES})
    messages = [
        Message(g.event_type or "activity", 0, i, g.key, g.raw)
        for i, g in enumerate(generate(config))
    ]
    result = ingestor.process(messages)
    assert result.rows and result.archive
    return result.archive, result.rows


def _count(conn: psycopg.Connection[Any], query: str, values: list[str]) -> int:
    """The count `query` finds for `values` (its one parameter)."""
    with conn.cursor() as cur:
        cur.execute(query, (values,))
        found = cur.fetchone()
    conn.rollback()
    assert found is not None
    return int(found[0])


def _archived(conn: psycopg.Connection[Any], archive: list[ArchiveRow]) -> int:
    query = "SELECT count(*) FROM raw_events WHERE event_id = ANY(%s::uuid[])"
    return _count(conn, query, [r[0] for r in archive])


def _assert_rows_written(
    store: FeatureStore, conn: psycopg.Connection[Any], rows: list[Row]
) -> None:
    """Each user's newest row of each view is what Feast reads online; every row is offline."""
    for name, view_rows in by_view(rows).items():
        fields = [f.name for f in features_of(name)]
        for row in latest_per_user(view_rows):
            online = store.get_online_features(
                features=[f"{name}:{f}" for f in fields], entity_rows=[{"user_id": row.user_id}]
            ).to_dict()
            assert {f: online[f][0] for f in fields} == row.values, (name, row.user_id)
        query = f"SELECT count(*) FROM {view(name).table} WHERE user_id = ANY(%s)"
        users = sorted({r.user_id for r in view_rows})
        assert _count(conn, query, users) == len(view_rows), name


def test_a_flush_is_written_online_offline_and_to_the_archive(
    writer_process: ProcessPoolExecutor,
    feature_store: FeatureStore,
    pg_conn: psycopg.Connection[Any],
    unique: str,
) -> None:
    archive, rows = _flush(unique)
    retries, newest = writer_process.submit(writer.write, writer.pack(Flush(rows, archive))).result(
        120
    )

    assert retries == 0
    assert newest == {name: max(r.row_us for r in vr) for name, vr in by_view(rows).items()}
    _assert_rows_written(feature_store, pg_conn, rows)
    assert _archived(pg_conn, archive) == len(archive)


def test_a_failed_part_fails_the_flush_once_the_other_parts_are_written(
    writer_process: ProcessPoolExecutor,
    feature_store: FeatureStore,
    pg_conn: psycopg.Connection[Any],
    unique: str,
) -> None:
    archive, rows = _flush(unique)
    # An event id Postgres refuses: no retry cures it, so the archive's part fails for good.
    broken = [("not-a-uuid", *archive[0][1:]), *archive[1:]]

    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        writer_process.submit(writer.write, writer.pack(Flush(rows, broken))).result(120)

    # The failure came back only after the online and offline parts were written: all there.
    _assert_rows_written(feature_store, pg_conn, rows)
    assert _archived(pg_conn, archive) == 0  # the COPY is one transaction: none of it went in


def test_the_writer_process_writes_without_importing_feast(
    writer_process: ProcessPoolExecutor,
    feature_store: FeatureStore,
    pg_conn: psycopg.Connection[Any],
    unique: str,
) -> None:
    archive, rows = _flush(unique)
    writer_process.submit(writer.write, writer.pack(Flush(rows, archive))).result(120)
    _assert_rows_written(feature_store, pg_conn, rows)
    # The repository's stores are the catalog's own: the registry was checked in a child
    # process, and the ~140 MiB of Feast, pandas and Arrow never entered this one.
    assert writer_process.submit(heavy_modules_loaded).result(60) == []
