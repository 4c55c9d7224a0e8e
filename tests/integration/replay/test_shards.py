"""Sharded replay against the real stack: the shards' union is the unsharded replay, bit for bit.

The archive is filled as the worker fills it (the `Ingestor` in arrival order, the archive
sink), in a Postgres schema of the test's own, with late, duplicate and too-old events; each
replay's rows, offline and online, are compared with the unsharded replay's and with the
independent pandas reference (tests/reference.py).
"""

from __future__ import annotations

import contextlib
import io
import math
import multiprocessing
import os
import signal
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from feast import FeatureStore
from psycopg import sql

from stream.catalog import EVENT_TYPES, VIEWS, features_of
from stream.core.events import to_us
from stream.core.ingest import Ingestor
from stream.core.records import Message
from stream.ops.migrate import load_migrations, migrate
from stream.redis_client import connect
from stream.replay.parallel import replay_sharded
from stream.replay.run import replay
from stream.replay.shard import SQL_SHARD, Shard, shard_of
from stream.replay.sources import archive_source
from stream.replay.span import ReplayRange
from stream.settings import Settings
from stream.sinks.archive import ArchiveSink
from stream.synth.generator import GeneratorConfig, generate
from tests.integration.helpers import same
from tests.integration.replay.shards import replay_slowly
from tests.reference import RefRow, features_at, flat, rows_in_arrival_order

DAYS = 3
USERS = 30
Stored = dict[tuple[str, str, datetime], tuple[Any, ...]]  # (view, user, time) -> values
Online = dict[tuple[str, str], tuple[Any, ...]]  # (view, user) -> values


def archive_traffic(settings: Settings, unique: str) -> tuple[list[dict[str, Any]], ReplayRange]:
    """Archive a stream as the worker would; its valid events in arrival order, and its range.

    Besides the generator's late and duplicate events, a few users get a copy of their newest
    event stamped 31 days earlier, sent last: too old for the worker (archived, not
    aggregated), and placed where it belongs by replay's event-time order.
    """
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=DAYS + 1)
    config = GeneratorConfig(
        users=USERS, days=DAYS, seed=int(unique[1:9], 16), start=start,
        out_of_order=0.05, duplicates=0.03, invalid=0.02, user_prefix=f"{unique}-",
    )  # fmt: skip
    events = [g.event for g in generate(config) if g.valid and g.event is not None]
    newest: dict[str, dict[str, Any]] = {}
    for event in by_event_time(events):
        if event["event_type"] != "sleep":  # a sleep event's time must be its payload's end
            newest[event["user_id"]] = event
    for event in list(newest.values())[:5]:
        moment = datetime.fromtimestamp(flat(event)["ts_us"] / 1e6, UTC) - timedelta(days=31)
        too_old = {**event, "event_id": str(uuid.uuid4()), "event_timestamp": moment.isoformat()}
        events.append(too_old)
    ingestor, _ = Ingestor.in_memory({settings.topic_for(t): t for t in EVENT_TYPES})
    messages = [
        Message(settings.topic_for(e["event_type"]), 0, i, e["user_id"].encode(), orjson.dumps(e))
        for i, e in enumerate(events)
    ]
    result = ingestor.process(messages)
    assert sum(1 for r in result.archive if r[-1]) == 5  # the too-old ones, flagged too late
    ArchiveSink(settings.postgres_conninfo(), settings.postgres_schema).write_rows(result.archive)
    return events, ReplayRange(start, start + timedelta(days=DAYS, hours=1))


def by_event_time(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(events, key=lambda e: flat(e)["ts_us"])  # stable: ties keep arrival order


def stored(settings: Settings) -> Stored:
    rows: Stored = {}
    with psycopg.connect(
        settings.postgres_conninfo(), options=f"-c search_path={settings.postgres_schema}"
    ) as conn:
        for spec in VIEWS:
            names = ", ".join(f.name for f in features_of(spec.name))
            for user, at, *values in conn.execute(
                f"SELECT user_id, event_timestamp, {names} FROM {spec.table}"
            ):
                rows[(spec.name, user, at)] = tuple(values)
    return rows


def online(store: FeatureStore, events: list[dict[str, Any]]) -> Online:
    keys = {(v.name, e["user_id"]) for e in events for v in VIEWS if e["event_type"] in v.events}
    found: Online = {}
    for spec in VIEWS:
        users = sorted(u for v, u in keys if v == spec.name)
        refs = [f"{spec.name}:{f.name}" for f in features_of(spec.name)]
        got = store.get_online_features(
            features=refs, entity_rows=[{"user_id": u} for u in users]
        ).to_dict()
        for i, user in enumerate(users):
            found[(spec.name, user)] = tuple(got[f.name][i] for f in features_of(spec.name))
    return found


def identical(a: Any, b: Any) -> bool:
    """Bit for bit: equal, or both NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b) and type(a) is type(b)


def assert_identical(got: dict[Any, tuple[Any, ...]], want: dict[Any, tuple[Any, ...]]) -> None:
    assert got.keys() == want.keys()
    for key, values in want.items():
        assert all(identical(a, b) for a, b in zip(got[key], values, strict=True)), key


def wipe(settings: Settings, unique: str) -> None:
    """The test schema's snapshots and the test users' online rows, so a run must write all."""
    with psycopg.connect(settings.postgres_conninfo()) as conn:
        for spec in VIEWS:
            conn.execute(
                sql.SQL("TRUNCATE {}.{}").format(
                    sql.Identifier(settings.postgres_schema), sql.Identifier(spec.table)
                )
            )
    client = connect(settings)
    try:
        keys = list(client.scan_iter(match=f"*{unique}-*".encode(), count=10_000))
        if keys:
            client.unlink(*keys)
    finally:
        client.close()


def reference_rows(events: list[dict[str, Any]], span: ReplayRange) -> Stored:
    rows = [r for r in rows_in_arrival_order(by_event_time(events)) if span.covers(r.row_us)]
    return {
        (r.view, r.user_id, datetime.fromtimestamp(r.row_us / 1e6, UTC)): tuple(
            r.values[f.name] for f in features_of(r.view)
        )
        for r in rows
    }


def reference_online(events: list[dict[str, Any]], span: ReplayRange) -> dict[Any, RefRow]:
    histories: dict[tuple[str, str], list[dict[str, Any]]] = {}
    distinct = {e["event_id"]: e for e in events}  # a duplicate counts once
    for event in by_event_time(list(distinct.values())):
        record = flat(event)
        histories.setdefault((record["user_id"], record["event_type"]), []).append(record)
    return {
        key: features_at(history, key[1], key[0], to_us(span.end))
        for key, history in histories.items()
    }


@pytest.fixture
def shard_settings(
    feast_settings: Settings, pg_schema: str, tmp_path: Path, unique: str
) -> Iterator[Settings]:
    """The session's Feast project, a Postgres schema of the test's own, its own checkpoints."""
    mine = feast_settings.model_copy(
        update={"postgres_schema": pg_schema, "stack_dir": tmp_path / "stack"}
    )
    migrate(mine.postgres_conninfo(), load_migrations(), schema=pg_schema)
    yield mine
    wipe(mine, unique)


def test_the_shard_query_is_the_python_hash(shard_settings: Settings) -> None:
    users = [f"user-{i}" for i in range(200)] + ["zzé中", ""]
    with psycopg.connect(shard_settings.postgres_conninfo()) as conn:
        for n in (2, 3, 7):
            query = "SELECT " + SQL_SHARD.replace("user_id", "u") + " FROM unnest(%s::text[]) u"
            found = [row[0] for row in conn.execute(query, (n, users))]
            assert found == [shard_of(u, n) for u in users]


def test_the_shards_union_is_the_unsharded_replay_bit_for_bit(
    shard_settings: Settings, feature_store: FeatureStore, unique: str
) -> None:
    settings = shard_settings
    events, span = archive_traffic(settings, unique)

    report = replay(
        settings,
        span,
        partial(archive_source, settings, span),
        "postgres",
        online=True,
        progress_out=io.StringIO(),
    )
    whole, whole_online = stored(settings), online(feature_store, events)
    want = reference_rows(events, span)
    assert whole.keys() == want.keys()
    for key, values in want.items():
        assert all(same(a, b) for a, b in zip(whole[key], values, strict=True)), key
    final = reference_online(events, span)
    for (view_name, user), values in whole_online.items():
        ref = next(r for (u, t), r in final.items() if u == user and r.view == view_name)
        assert all(
            same(a, ref.values[f.name]) for a, f in zip(values, features_of(view_name), strict=True)
        ), (view_name, user)

    for n in (1, 2, 3):
        wipe(settings, unique)
        out = io.StringIO()
        sharded = replay_sharded(settings, span, n, online=True, fresh=True, progress_out=out)
        assert_identical(stored(settings), whole)
        assert_identical(online(feature_store, events), whole_online)
        assert (sharded.events, sharded.applied, sharded.rows_written, sharded.users) == (
            report.events, report.applied, report.rows_written, report.users,
        ), n  # fmt: skip
        assert f"replay, {n} shards," in out.getvalue()
        assert not list((settings.stack_dir / "replay").glob("*.json"))

    # A rerun of one shard replaces exactly its users' rows in the range, and no one else's.
    bogus = (span.start + timedelta(hours=5)).replace(microsecond=1)
    one = Shard(1, 3)
    theirs = sorted({e["user_id"] for e in events if one.holds(e["user_id"])})
    others = sorted({e["user_id"] for e in events if not one.holds(e["user_id"])})
    names = [f.name for f in features_of("user_activity_features")]
    columns = ", ".join(names)
    with psycopg.connect(
        settings.postgres_conninfo(), options=f"-c search_path={settings.postgres_schema}"
    ) as conn:
        for user in (theirs[0], others[0]):
            conn.execute(
                f"INSERT INTO user_activity_features (user_id, event_timestamp, {columns}) "
                f"VALUES (%s, %s, {', '.join(['NULL'] * len(names))})",
                (user, bogus),
            )
    replay(
        settings, span, partial(archive_source, settings, span, shard=one), "postgres",
        shard=one, progress_out=io.StringIO(),
    )  # fmt: skip
    after = stored(settings)
    assert ("user_activity_features", theirs[0], bogus) not in after
    assert after.pop(("user_activity_features", others[0], bogus))
    assert_identical(after, whole)


def saved_events(path: Path) -> int:
    """The events a checkpoint file says are done: its last line that was written whole."""
    with contextlib.suppress(FileNotFoundError):
        for line in reversed(path.read_bytes().splitlines()):
            with contextlib.suppress(orjson.JSONDecodeError):
                return int(orjson.loads(line)["events_done"])
    return 0


@pytest.mark.timeout(300)
def test_a_killed_shard_resumes_and_changes_nothing_else(
    shard_settings: Settings, feature_store: FeatureStore, unique: str
) -> None:
    settings = shard_settings
    events, span = archive_traffic(settings, unique)
    want = reference_rows(events, span)
    killed, other = Shard(1, 2), Shard(0, 2)

    context = multiprocessing.get_context("spawn")
    shard = context.Process(target=replay_slowly, args=(settings, span, killed, 40, 0.3))
    shard.start()
    checkpoints = settings.stack_dir / "replay"
    deadline = time.monotonic() + 120
    while True:
        found = list(checkpoints.glob("*-shard-1-of-2.json"))
        if found and saved_events(found[0]) >= 120:
            break
        assert shard.is_alive() and time.monotonic() < deadline, "no checkpoint from the shard"
        time.sleep(0.1)
    assert shard.pid is not None
    os.kill(shard.pid, signal.SIGKILL)
    shard.join()
    time.sleep(2)  # its writer process notices its parent gone within a second, and exits

    replay(
        settings, span, partial(archive_source, settings, span, shard=other), "postgres",
        shard=other, online=True, progress_out=io.StringIO(),
    )  # fmt: skip
    before = {k: v for k, v in stored(settings).items() if other.holds(k[1])}
    before_online = {k: v for k, v in online(feature_store, events).items() if other.holds(k[1])}
    assert before

    resumed = replay(
        settings, span, partial(archive_source, settings, span, shard=killed), "postgres",
        shard=killed, online=True, progress_out=io.StringIO(),
    )  # fmt: skip
    assert resumed.resumed_from >= 120
    after = stored(settings)
    assert {k: v for k, v in after.items() if other.holds(k[1])} == before
    assert_identical(
        {k: v for k, v in online(feature_store, events).items() if other.holds(k[1])},
        before_online,
    )
    assert after.keys() == want.keys()
    for key, values in want.items():
        assert all(same(a, b) for a, b in zip(after[key], values, strict=True)), key
    assert not list(checkpoints.glob("*.json"))
