"""`make replay` against the real stack: parity with the worker, idempotent reruns, resume, sources.

One worker run writes a stream's snapshots; replay then rewrites them from the archive, from a
JSONL file and from Kafka, and each result is compared with what the worker wrote and with the
independent pandas reference (tests/reference.py).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
import pytest
from feast import FeatureStore
from pydantic import SecretStr

from stream.catalog import VIEWS, features_of
from stream.core.events import to_us
from stream.errors import ReplayError
from stream.ops.prefix import IN_PREFIX, prefix_bounds
from stream.replay.run import replay
from stream.replay.sources import archive_source, jsonl_source, kafka_source
from stream.replay.span import ReplayRange
from stream.settings import Settings
from stream.synth.generator import GeneratedEvent, GeneratorConfig, generate
from stream.synth.send import write_jsonl
from tests.integration.helpers import Worker, archived, offline_rows, produce, same, wait_for
from tests.reference import RefRow, features_at, flat, rows_in_arrival_order

DAYS = 3
Stored = dict[tuple[str, str, datetime], tuple[Any, ...]]  # (view, user, time) -> values


def traffic(unique: str) -> tuple[list[GeneratedEvent], datetime]:
    # Ends a day before now, so a range ending after the stream is still in the past.
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=DAYS + 1)
    config = GeneratorConfig(
        users=12, days=DAYS, seed=int(unique[1:9], 16), start=start,
        out_of_order=0.05, duplicates=0.03, invalid=0.02, user_prefix=f"{unique}-",
    )  # fmt: skip
    return list(generate(config)), start


def stored(conn: psycopg.Connection[Any], prefix: str) -> Stored:
    rows: Stored = {}
    with conn.cursor() as cur:
        for spec in VIEWS:
            names = ", ".join(f.name for f in features_of(spec.name))
            cur.execute(
                f"SELECT user_id, event_timestamp, {names} FROM {spec.table} WHERE {IN_PREFIX}",
                prefix_bounds(f"{prefix}-"),
            )
            for user, at, *values in cur.fetchall():
                rows[(spec.name, user, at)] = tuple(values)
    conn.rollback()
    return rows


def as_stored(rows: list[RefRow]) -> Stored:
    return {
        (r.view, r.user_id, datetime.fromtimestamp(r.row_us / 1e6, UTC)): tuple(
            r.values[f.name] for f in features_of(r.view)
        )
        for r in rows
    }


def assert_close(got: Stored, want: Stored) -> None:
    assert got.keys() == want.keys()
    for key, values in want.items():
        assert all(same(a, b) for a, b in zip(got[key], values, strict=True)), key


def valid_in_arrival_order(events: list[GeneratedEvent]) -> list[dict[str, Any]]:
    return [g.event for g in events if g.valid and g.event is not None]


def by_event_time(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(events, key=lambda e: flat(e)["ts_us"])  # stable: ties keep arrival order


def in_order_keys(events: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(view, user) pairs whose events arrived in event-time order: there replay == worker."""
    seen: dict[tuple[str, str], list[int]] = {}
    views = {t: v.name for v in VIEWS for t in v.events}
    for event in events:
        record = flat(event)
        seen.setdefault((views[record["event_type"]], record["user_id"]), []).append(
            record["ts_us"]
        )
    return {key for key, times in seen.items() if times == sorted(times)}


@pytest.fixture
def worker_run(
    stream_settings: Settings,
    start_worker: Worker,
    pg_conn: psycopg.Connection[Any],
    unique: str,
    tmp_path: Path,
) -> tuple[list[GeneratedEvent], datetime]:
    events, start = traffic(unique)
    start_worker()
    produce(stream_settings, events)
    valid = valid_in_arrival_order(events)
    want = rows_in_arrival_order(valid)
    distinct = len({e["event_id"] for e in valid})
    wait_for(lambda: archived(pg_conn, unique) == distinct, 300, "the archive", tmp_path)
    wait_for(lambda: offline_rows(pg_conn, unique) >= len(want), 60, "the snapshots", tmp_path)
    return events, start


def run(settings: Settings, span: ReplayRange, source: Callable[..., Any], **kw: Any) -> Any:
    return replay(settings, span, source, f"test:{id(source)}", progress_out=io.StringIO(), **kw)


def test_replay_matches_the_worker_and_the_reference(
    stream_settings: Settings,
    worker_run: tuple[list[GeneratedEvent], datetime],
    pg_conn: psycopg.Connection[Any],
    feature_store: FeatureStore,
    unique: str,
) -> None:
    events, start = worker_run
    valid = valid_in_arrival_order(events)
    worker_rows = stored(pg_conn, unique)
    end = start + timedelta(days=DAYS, hours=1)
    span = ReplayRange(start, end)

    # From the archive, in event-time order, with the latest state pushed online.
    report = run(stream_settings, span, partial(archive_source, stream_settings, span), online=True)
    replayed = stored(pg_conn, unique)
    want = as_stored(rows_in_arrival_order(by_event_time(valid)))
    assert_close(replayed, want)
    # The session's archive also holds other tests' users in this range, and replay rewrites
    # theirs too: this test's own rows are exactly `want` (above), the report counts them all.
    assert report.rows_written >= len(want)
    # Where events arrived in event-time order, replay's rows are the worker's, bit for bit.
    ordered = in_order_keys(valid)
    assert len(ordered) >= 10
    for key, values in worker_rows.items():
        if (key[0], key[1]) in ordered:
            assert replayed[key] == values, key

    # Online: each user's state at the end of the range, as the reference computes it.
    histories: dict[tuple[str, str], list[dict[str, Any]]] = {}
    distinct = {e["event_id"]: e for e in valid}  # a duplicate counts once
    for event in by_event_time(list(distinct.values())):
        record = flat(event)
        histories.setdefault((record["user_id"], record["event_type"]), []).append(record)
    for spec in VIEWS:
        keys = sorted(k for k in histories if k[1] in spec.events)
        refs = [f"{spec.name}:{f.name}" for f in features_of(spec.name)]
        got = feature_store.get_online_features(
            features=refs, entity_rows=[{"user_id": u} for u, _ in keys]
        ).to_dict()
        for i, (user, event_type) in enumerate(keys):
            final = features_at(histories[(user, event_type)], event_type, user, to_us(end))
            for f in features_of(spec.name):
                assert same(got[f.name][i], final.values[f.name]), (user, f.name)

    # A rerun adds nothing; a narrower one replaces its range and only that.
    run(stream_settings, span, partial(archive_source, stream_settings, span), fresh=True)
    assert stored(pg_conn, unique) == replayed
    middle = start + timedelta(days=1)
    bogus_user = next(iter(sorted(ordered)))[1]
    names = [f.name for f in features_of("user_activity_features")]
    with pg_conn.cursor() as cur:
        for at in (middle + timedelta(hours=5), start + timedelta(minutes=1)):
            columns = ", ".join(["user_id", "event_timestamp", *names])
            nulls = ", ".join(["NULL"] * len(names))
            cur.execute(
                f"INSERT INTO user_activity_features ({columns}) "
                f"VALUES (%s, %s, {nulls}) ON CONFLICT DO NOTHING",
                (bogus_user, at),
            )
    pg_conn.commit()
    narrow = ReplayRange(middle, end)
    run(stream_settings, narrow, partial(archive_source, stream_settings, narrow))
    after = stored(pg_conn, unique)
    assert ("user_activity_features", bogus_user, middle + timedelta(hours=5)) not in after
    assert ("user_activity_features", bogus_user, start + timedelta(minutes=1)) in after
    del after[("user_activity_features", bogus_user, start + timedelta(minutes=1))]
    assert after == replayed

    # From Kafka, in arrival order, as the worker read it: every row is the worker's.
    run(
        stream_settings,
        span,
        partial(kafka_source, stream_settings, span, from_offset=None, from_time=None),
    )
    assert stored(pg_conn, unique) == worker_rows


def test_jsonl_source_and_resume_after_an_interruption(
    stream_settings: Settings,
    pg_conn: psycopg.Connection[Any],
    unique: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events, start = traffic(unique)
    path = tmp_path / "events.jsonl"
    with path.open("wb") as file:
        write_jsonl(events, file)
    span = ReplayRange(start, start + timedelta(days=DAYS, hours=1))
    want = as_stored(rows_in_arrival_order(by_event_time(valid_in_arrival_order(events))))
    settings = stream_settings.model_copy(update={"stack_dir": tmp_path / "stack"})

    monkeypatch.setattr("stream.replay.sources.CHUNK_EVENTS", 100)
    source = partial(jsonl_source, path, span)
    with pytest.raises(KeyboardInterrupt):
        replay(settings, span, source, "jsonl", progress_out=io.StringIO(), stop_after_chunks=2)
    partly = stored(pg_conn, unique)
    assert 0 < len(partly) < len(want)
    checkpoints = list((tmp_path / "stack" / "replay").glob("*.json"))
    assert len(checkpoints) == 1

    out = io.StringIO()
    report = replay(settings, span, source, "jsonl", progress_out=out)
    assert report.resumed_from == 200
    assert "resuming after 200 events" in out.getvalue()
    assert_close(stored(pg_conn, unique), want)
    assert report.invalid == sum(1 for g in events if not g.valid)
    assert not list((tmp_path / "stack" / "replay").glob("*.json"))


def test_bad_ranges_and_unreachable_sources_fail_clearly(
    stream_settings: Settings,
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC)
    with pytest.raises(ReplayError, match="empty range"):
        ReplayRange(now, now - timedelta(days=1))
    with pytest.raises(ReplayError, match="no time zone"):
        ReplayRange(datetime(2026, 1, 1), datetime(2026, 1, 2))
    span = ReplayRange(now - timedelta(days=1), now)
    with pytest.raises(ReplayError, match="cannot read"):
        list(jsonl_source(tmp_path / "missing.jsonl", span, _stats()))
    down = stream_settings.model_copy(
        update={"postgres_dsn": SecretStr("postgresql://aurora@127.0.0.1:9/aurora")}
    )
    with pytest.raises(ReplayError, match="cannot reach Postgres"):
        list(archive_source(down, span, _stats()))


def _stats() -> Any:
    from stream.replay.sources import SourceStats

    return SourceStats()
