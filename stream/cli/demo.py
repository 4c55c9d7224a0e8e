"""`make demo`: a day of traffic through a real worker, then what models would read.

Generates a day of events for a few thousand users (with late, duplicate and invalid ones), sends
them to Kafka, runs `python -m stream worker` until every valid event is archived and its rows
are written, measures freshness by sending one more event and timing until it is readable online,
then prints two feature services for a sample user, the offline row counts and the figures.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg

from stream.catalog import VIEWS, features_of
from stream.core.events import encode
from stream.featurestore.env import open_store
from stream.ops.prefix import IN_PREFIX, prefix_bounds
from stream.ops.topics import ensure_topics
from stream.producer import EventProducer
from stream.settings import Settings
from stream.synth.generator import GeneratorConfig, default_start, generate
from stream.synth.send import send_to_kafka


def _say(text: str) -> None:
    print(text, flush=True)


def _count(settings: Settings, sql: str, args: tuple[Any, ...] = ()) -> int:
    with psycopg.connect(settings.postgres_conninfo()) as conn, conn.cursor() as cur:
        cur.execute(sql, args)
        row = cur.fetchone()
    conn.close()
    return int(row[0]) if row else 0


def _wait(predicate: Callable[[], bool], timeout_s: float, what: str, worker: Any) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited (code {worker.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout_s:.0f}s")
        time.sleep(0.5)


def run(settings: Settings, users: int, seed: int) -> int:
    # A SIGTERM (or `timeout`) must still stop the worker this run starts: unwind through finally.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    run_id = uuid.uuid4().hex[:6]
    prefix = f"demo{run_id}-"
    ensure_topics(settings)
    config = GeneratorConfig(
        users=users,
        days=1,
        seed=seed,
        start=default_start(datetime.now(UTC), 1),
        out_of_order=0.02,
        duplicates=0.01,
        invalid=0.005,
        user_prefix=prefix,
    )
    # Event ids follow from the seed: a new seed per run keeps runs from sharing ids in the archive.
    _say(f"generating a day of traffic for {users} users (seed {seed}) ...")
    events = list(generate(config))
    valid = {g.event["event_id"] for g in events if g.valid and g.event is not None}
    invalid = sum(1 for g in events if not g.valid)
    with EventProducer(settings) as producer:
        sent = send_to_kafka(events, producer, settings)
        producer.flush()
    _say(f"sent {sent} events to Kafka ({len(valid)} distinct valid, {invalid} invalid)")

    log = settings.stack_dir / "logs" / "demo-worker.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    _say(f"starting a worker (log: {log}) ...")
    started = time.monotonic()
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "stream", "worker", "--loglevel", "warn"],
            env={**os.environ, **settings.to_env()},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        archived = f"SELECT count(*) FROM raw_events WHERE {IN_PREFIX}"  # noqa: S608

        def caught_up() -> bool:
            return _count(settings, archived, prefix_bounds(prefix)) >= len(valid)

        _wait(caught_up, 600, "the worker caught up", worker)
        elapsed = time.monotonic() - started
        freshness = _freshness(settings, events, prefix, worker)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=60)

    sample = _busiest_user(events)
    _show_services(settings, sample)
    _say("\noffline snapshot rows written by this run:")
    for view in VIEWS:
        rows = _count(
            settings, f"SELECT count(*) FROM {view.table} WHERE {IN_PREFIX}",  # noqa: S608
            prefix_bounds(prefix),
        )  # fmt: skip
        _say(f"  {view.table:<24} {rows:>8}")
    _say(
        f"\nthroughput: {sent} events in {elapsed:.1f}s from worker start to the last archived "
        f"event = {sent / elapsed:,.0f} events/s (includes the worker's start-up)"
    )
    _say(f"freshness: one new event readable through get_online_features after {freshness:.2f}s")
    return 0


def _busiest_user(events: list[Any]) -> str:
    """The user with events of the most types (then the most events): the fullest dashboard."""
    types: dict[str, set[str]] = {}
    counts: dict[str, int] = {}
    for g in events:
        if g.valid and g.event is not None:
            user = g.event["user_id"]
            types.setdefault(user, set()).add(g.event["event_type"])
            counts[user] = counts.get(user, 0) + 1
    return max(types, key=lambda u: (len(types[u]), counts[u], u))


def _freshness(settings: Settings, events: list[Any], prefix: str, worker: Any) -> float:
    """Send one more activity event for a sample user; time until its row is served online."""
    store = open_store(settings)
    template = next(
        g.event for g in events if g.valid and g.event and g.event["event_type"] == "activity"
    )
    now = datetime.now(UTC)
    event = {
        **template,
        "event_id": str(uuid.uuid4()),
        "event_timestamp": now.isoformat(timespec="milliseconds"),
        "payload": {**template["payload"], "duration_minutes": 42.5},
    }
    user = event["user_id"]
    ref = "user_activity_features:total_minutes_24h"

    def served() -> float | None:
        value = store.get_online_features(features=[ref], entity_rows=[{"user_id": user}])
        result: float | None = value.to_dict()["total_minutes_24h"][0]
        return result

    before = served()
    with EventProducer(settings) as producer:
        sent_at = time.monotonic()
        producer.send_raw(settings.topic_for("activity"), user.encode(), encode(event))
        producer.flush()
    _wait(lambda: served() != before, 60, "the new event was served", worker)
    return time.monotonic() - sent_at


def _show_services(settings: Settings, user: str) -> None:
    store = open_store(settings)
    local = datetime.now(UTC)
    row = {
        "user_id": user,
        "current_hour": local.hour,
        "day_of_week": local.weekday(),
        "is_weekend": int(local.weekday() >= 5),
    }
    for service_name in ("energy_prediction_v1", "wellness_dashboard_v1"):
        service = store.get_feature_service(service_name)
        values = store.get_online_features(features=service, entity_rows=[row]).to_dict()
        _say(f"\n{service_name} for {user} ({local:%A %H:%M} UTC):")
        for view_name, names in service_layout(service):
            _say(f"  {view_name}")
            width = max(len(name) for name in names)
            for name in names:
                _say(f"    {name:<{width}}  {readable(values[name][0])}")


def service_layout(service: Any) -> list[tuple[str, list[str]]]:
    """A feature service's features grouped by view: base views in catalog order, each view's
    features as the catalog lists them; on-demand views as the service declares them."""
    projections = {p.name: [f.name for f in p.features] for p in service.feature_view_projections}
    layout = [
        (v.name, [f.name for f in features_of(v.name)]) for v in VIEWS if v.name in projections
    ]
    layout += [
        (name, names) for name, names in projections.items() if name not in {v.name for v in VIEWS}
    ]
    return layout


def readable(value: Any) -> str:
    """A value as a person reads it: floats to three decimals (the stored values stay exact)."""
    if value is None:
        return "null"
    if isinstance(value, float):
        rounded = round(value, 3)
        return f"{rounded + 0.0:,}"  # + 0.0: a rounded -0.0001 reads 0.0, not -0.0
    return str(value)
