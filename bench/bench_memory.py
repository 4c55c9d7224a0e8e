"""Memory per active user: the state's bytes, its objects, and a real worker's RSS holding it.

For each user count (1k, 3k and 10k in the full run), 30 days (`--days`) of generated traffic
per user go through the worker's `Ingestor` in memory. Then:

- state bytes: the changelog records of every (user, event type) state, summed and divided by
  the users; this is what the worker's table holds and what the changelog topic stores;
- object bytes: what `UserState.restore` allocates for all of them, under tracemalloc; the
  worker builds these objects for a user when its next event arrives;
- worker RSS (its main process, which holds the state; the writer process's is reported beside
  it): the records are produced into a fresh app's changelog topic and a real worker is
  started on it; once it has recovered the table (an event sent after the records is archived,
  and agents run only after recovery), its RSS is read. The same is done with an empty
  changelog, and the difference divided by the users is the worker's RSS per user.

    .venv/bin/python -m bench.bench_memory --users 1000,3000,10000 --days 30
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
import zlib
from datetime import UTC, datetime
from typing import Any

from bench.bench_ingest import traffic
from bench.common import (
    archived,
    delete_run_leftovers,
    fresh_settings,
    rss_mib,
    start_worker,
    stop_worker,
    tree_rss_mib,
    wait_until,
    write_result,
)
from stream.catalog import EVENT_TYPES
from stream.core.ingest import Ingestor
from stream.core.records import Message
from stream.core.state import UserState, head_key
from stream.ops.topics import ensure_topics
from stream.producer import EventProducer
from stream.settings import Settings
from stream.synth.generator import GeneratorConfig, generate
from stream.synth.send import send_to_kafka

EVENTS_PER_USER = 12  # one day of the generator's average user


States = dict[bytes, dict[bytes, bytes]]


def build_states(settings: Settings, users: int, prefix: str, days: int = 1) -> States:
    """Head key -> the state's changelog records, for `users` users after `days` of traffic."""
    events = traffic(users * EVENTS_PER_USER * days, days, zlib.crc32(prefix.encode()), prefix)
    ingestor, states = Ingestor.in_memory({settings.topic_for(t): t for t in EVENT_TYPES})
    for at in range(0, len(events), 50_000):
        ingestor.process(
            Message(settings.topic_for(g.event_type or "activity"), 0, at + i, g.key, g.raw)
            for i, g in enumerate(events[at : at + 50_000])
        )
    return {head_key(*key): state.records() for key, state in states.items()}


def _who(head: bytes) -> tuple[str, Any]:
    """(user id, event type) of a head key `type|user`."""
    event_type, _, user_id = head.decode().partition("|")
    return user_id, event_type


def object_bytes(states: States) -> tuple[int, int]:
    """Bytes the states take decoded (as a worker restores them), and once each has made a
    row (its windows folded, as a state a worker uses holds them)."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        objects = [UserState.restore(*_who(head), r[head], r.get) for head, r in states.items()]
        restored = tracemalloc.get_traced_memory()[0]
        for state in objects:
            state.row_at((state.last_row_us or 0) + 1)
        folded = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del objects
    return restored - before, folded - before


def produce_changelog(settings: Settings, states: States) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        linger_ms=20,
        batch_size=512 * 1024,
        compression_type=None,
    )
    topic = f"{settings.worker_app_id}-user-state-changelog"
    for head, records in states.items():
        # The worker's partition for a state is its user's event partition; any spread will do
        # here, since one worker owns and recovers them all.
        partition = zlib.crc32(head) % settings.topic_partitions
        for key, value in records.items():
            producer.send(topic, key=key, value=value, partition=partition)
    producer.flush()
    producer.close()


def worker_rss(settings: Settings, records: States, prefix: str) -> dict[str, float]:
    """RSS of a worker that has recovered `records`; the seconds from start to serving."""
    ensure_topics(settings)
    if records:
        produce_changelog(settings, records)
    probe = list(
        generate(
            GeneratorConfig(
                users=1,
                days=1,
                # Event ids derive from the seed, and the archive keeps one row per event id.
                seed=zlib.crc32(prefix.encode()),
                start=datetime.now(UTC),
                user_prefix=f"{prefix}probe-",
            )
        )
    )[:1]
    began = time.monotonic()
    worker = start_worker(settings, "memory")
    try:
        with EventProducer(settings) as producer:
            send_to_kafka(probe, producer, settings)
            producer.flush()
        wait_until(lambda: archived(settings, f"{prefix}probe-"), 1, 900, "probe", worker)
        serving_s = time.monotonic() - began
        time.sleep(2)  # let the recovery's buffers be released before reading RSS
        rss = rss_mib(worker.pid)
        tree = tree_rss_mib(worker.pid)
    finally:
        stop_worker(worker)
        delete_run_leftovers(settings)
    return {
        "rss_mib": round(rss, 1),
        "with_writer_mib": round(tree, 1),
        "start_to_serving_s": round(serving_s, 1),
    }


def run(user_counts: list[int], with_worker: bool = True, days: int = 1) -> dict[str, Any]:
    idle: dict[str, float] = {}
    if with_worker:
        # memory:// holds every record in RAM: what the worker held before the local store.
        settings, prefix = fresh_settings(worker_store="memory://")
        print("worker with an empty changelog ...", flush=True)
        idle = worker_rss(settings, {}, prefix)
    results = []
    for users in user_counts:
        settings, prefix = fresh_settings(worker_store="memory://")
        print(f"{users:,} users: building their states ...", flush=True)
        records = build_states(settings, users, prefix, days)
        state_bytes = sum(len(k) + len(v) for r in records.values() for k, v in r.items())
        objects, folded = object_bytes(records)
        print(f"  {len(records):,} states, {state_bytes / users:,.0f} B/user", flush=True)
        result: dict[str, Any] = {
            "users": users,
            "states": len(records),
            "state_bytes_per_user": round(state_bytes / users),
            "object_bytes_per_user": round(objects / users),
            "folded_bytes_per_user": round(folded / users),
            "worker_rss_mib": None,
            "worker_rss_bytes_per_user": None,
            "worker_start_to_serving_s": None,
        }
        if with_worker:
            print("  a worker recovering them ...", flush=True)
            worker = worker_rss(settings, records, prefix)
            result["worker_rss_mib"] = worker["rss_mib"]
            result["worker_with_writer_mib"] = worker["with_writer_mib"]
            result["worker_rss_bytes_per_user"] = round(
                (worker["rss_mib"] - idle["rss_mib"]) * 2**20 / users
            )
            result["worker_start_to_serving_s"] = worker["start_to_serving_s"]
        results.append(result)
        del records
    return {
        "parameters": {"events_per_user_day": EVENTS_PER_USER, "days": days},
        "idle_worker": idle,
        "users": results,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", default="1000,3000,10000", help="comma-separated user counts")
    parser.add_argument("--name", default="memory")
    parser.add_argument("--no-worker", action="store_true", help="in-process figures only")
    parser.add_argument("--days", type=int, default=30, help="days of traffic per user")
    args = parser.parse_args()
    report = run(
        [int(n) for n in args.users.split(",")], with_worker=not args.no_worker, days=args.days
    )
    write_result(args.name, report)
    print(f"idle worker: {report['idle_worker'].get('rss_mib')} MiB")
    for r in report["users"]:
        print(
            f"{r['users']:>8,} users | state {r['state_bytes_per_user']:,} B/user | objects "
            f"{r['object_bytes_per_user']:,} B/user ({r['folded_bytes_per_user']:,} with windows) "
            f"| memory:// worker {r['worker_rss_mib']} MiB, "
            f"{r['worker_rss_bytes_per_user']} B/user | serving after "
            f"{r['worker_start_to_serving_s']} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
