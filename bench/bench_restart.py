"""Restart: from the start command to the first new event served online, with N users' states.

    .venv/bin/python -m bench.bench_restart --users 100000 --memory-users 20000

States: each of `--users` users has 30 days of history. The core builds the states of a sample
of users from the generator's traffic; each other user gets a sample user's records under its
own id (the values hold no user id), and the records go into a fresh app's changelog topic.
Three starts are timed, each from the start command until a new event of a new user is readable
through `get_online_features` (the probe is produced at the start command):

- memory:// (the baseline): the worker rereads the whole changelog before it serves;
- aurora:// after a clean stop, its store holding the changelog up to its end (filled here from
  the same records, as a worker that had run would have left it);
- aurora:// after SIGKILL of the running worker's process group, restarted at once: the group
  hands the same slot its partitions back (static membership) instead of waiting out the dead
  session.

Beside each, the worker's RSS once it serves. memory:// runs at `--memory-users` (it reads about
12,000 records a second) and its time at `--users` is extrapolated from the records per second
it measured.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from kafka.partitioner.default import murmur2

from bench.common import (
    delete_run_leftovers,
    fresh_settings,
    rss_mib,
    start_worker,
    stop_worker,
    tree_rss_mib,
    write_result,
)
from stream.catalog import EVENT_TYPES
from stream.core.codec import decode_head, encode_head
from stream.core.events import encode
from stream.core.ingest import Ingestor
from stream.core.records import Message, Record
from stream.featurestore.env import open_store
from stream.ops.topics import ensure_topics
from stream.producer import EventProducer
from stream.settings import Settings
from stream.sinks.state_store import HEAD, Database, split_key
from stream.synth.generator import GeneratorConfig, generate
from stream.worker.changelog import ChangelogProducer
from stream.worker.slots import take_slot

DAYS = 30
SAMPLE_USERS = 500

# One user's records: (key, value), the head first.
Records = list[tuple[bytes, bytes]]


def sample_states(prefix: str) -> list[Records]:
    """The records of SAMPLE_USERS users after 30 days of the generator's traffic, per user."""
    config = GeneratorConfig(
        users=SAMPLE_USERS,
        days=DAYS,
        seed=zlib.crc32(prefix.encode()),
        start=datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=DAYS),
        user_prefix="sample-",
    )
    ingestor, states = Ingestor.in_memory({t: t for t in EVENT_TYPES})
    events = list(generate(config))
    ingestor.process(
        Message(g.event_type or "activity", 0, i, g.key, g.raw) for i, g in enumerate(events)
    )
    per_user: dict[str, Records] = {}
    for (user, _), state in sorted(states.items()):
        per_user.setdefault(user, []).extend(state.records().items())
    return list(per_user.values())


def users_records(
    samples: list[Records], users: int, prefix: str, partitions: int
) -> Iterator[tuple[int, bytes, bytes]]:
    """(partition, key, value) of every record of `users` users, each a sample under its id."""
    for n in range(users):
        user = f"{prefix}u{n:07d}".encode()
        partition = (murmur2(user) & 0x7FFFFFFF) % partitions
        for key, value in samples[n % len(samples)]:
            state, chunk = split_key(key)
            new_key = key.replace(b"|" + state.partition(b"|")[2], b"|" + user)
            if chunk == HEAD:  # the head carries the partition its user's events are on
                newest, row, synced, _, friends = decode_head(value)
                value = encode_head(newest, row, synced, partition, friends)
            yield partition, new_key, value


def fill(settings: Settings, samples: list[Records], users: int, prefix: str) -> dict[str, Any]:
    """The users' records into the app's changelog, in record batches as the worker sends
    them; returns counts and each partition's last offset."""
    ensure_topics(settings)
    producer = ChangelogProducer(settings, f"{settings.worker_app_id}-user-state-changelog")
    records = 0
    size = 0
    last: dict[int, int] = {}

    async def send_all() -> None:
        nonlocal records, size
        batch: list[tuple[int, list[Record]]] = []
        for partition, key, value in users_records(
            samples, users, prefix, settings.topic_partitions
        ):
            batch.append((partition, [(key, value)]))
            records += 1
            size += len(key) + len(value)
            if len(batch) >= 50_000:
                last.update(await producer.send(batch))
                batch = []
        last.update(await producer.send(batch))
        await producer.stop()

    began = time.monotonic()
    asyncio.run(send_all())
    return {
        "records": records,
        "bytes": size,
        "produce_s": round(time.monotonic() - began, 1),
        "last_offsets": last,
    }


def fill_store(
    settings: Settings, samples: list[Records], users: int, prefix: str, last: dict[int, int]
) -> float:
    """The store a worker that had run would have left: every record, and the changelog's end."""
    slot = take_slot(settings.worker_state_dir, settings.worker_app_id)
    began = time.monotonic()
    db = Database(slot.directory / "user-state.sqlite")
    topic = f"{settings.worker_app_id}-user-state-changelog"
    batch: list[tuple[bytes, int, int, bytes]] = []
    for partition, key, value in users_records(samples, users, prefix, settings.topic_partitions):
        state, chunk = split_key(key)
        batch.append((state, chunk, partition, value))
        if len(batch) >= 200_000:
            db.write(batch, (), {})
            batch = []
    db.write(batch, (), {(topic, p): o for p, o in last.items()})
    db.close()
    slot.lock.close()  # the worker takes this slot next
    return time.monotonic() - began


def probe_event(prefix: str, n: int) -> tuple[str, bytes]:
    """A new user's activity event, now: (user id, message value)."""
    for attempt in range(100):  # a generated day now and then has no activity: the next seed
        config = GeneratorConfig(
            users=1, days=1, seed=zlib.crc32(f"{prefix}{n}.{attempt}".encode()),
            start=datetime.now(UTC), user_prefix=f"{prefix}probe{n}-",
        )  # fmt: skip
        found = [
            g.event for g in generate(config) if g.event and g.event["event_type"] == "activity"
        ]
        if found:
            event = {
                **found[0],
                "event_timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
            }
            return event["user_id"], encode(event)
    raise RuntimeError("no generated day held an activity event")


def timed_start(
    settings: Settings, store: Any, prefix: str, n: int, name: str
) -> tuple[subprocess.Popen[bytes], dict[str, float]]:
    """Start a worker and the probe at once; seconds until the probe is served online."""
    user, value = probe_event(prefix, n)
    ref = "user_activity_features:activity_count_24h"
    began = time.monotonic()
    worker = start_worker(settings, name)
    with EventProducer(settings) as producer:
        producer.send_raw(settings.topic_for("activity"), user.encode(), value)
        producer.flush()
    deadline = began + 3600
    while True:
        got = store.get_online_features(features=[ref], entity_rows=[{"user_id": user}])
        if got.to_dict()["activity_count_24h"][0] == 1:
            break
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited ({worker.returncode}) before serving")
        if time.monotonic() > deadline:
            raise TimeoutError("the probe was not served within an hour")
        time.sleep(0.1)
    served = time.monotonic() - began
    time.sleep(1)
    return worker, {
        "served_s": round(served, 2),
        "rss_mib": round(rss_mib(worker.pid), 1),
        "tree_rss_mib": round(tree_rss_mib(worker.pid), 1),
    }


def run(users: int, memory_users: int) -> dict[str, Any]:
    print("building 30-day states of the sample users ...", flush=True)
    samples = sample_states("restart")
    per_user = sum(len(k) + len(v) for r in samples for k, v in r) / len(samples)
    report: dict[str, Any] = {
        "parameters": {"users": users, "memory_users": memory_users, "days": DAYS},
        "state_bytes_per_user": round(per_user),
        "records_per_user": round(sum(len(r) for r in samples) / len(samples), 1),
    }

    print(f"memory:// with {memory_users:,} users ...", flush=True)
    settings, prefix = fresh_settings(worker_store="memory://")
    store = open_store(settings)
    try:
        filled = fill(settings, samples, memory_users, prefix)
        worker, figures = timed_start(settings, store, prefix, 0, "memory")
        stop_worker(worker)
        report["memory"] = {**filled, **figures, "users": memory_users}
        rate = filled["records"] / max(0.1, figures["served_s"])
        report["memory"]["records_per_s"] = round(rate)
    finally:
        delete_run_leftovers(settings)

    print(f"aurora:// with {users:,} users ...", flush=True)
    settings, prefix = fresh_settings(worker_store="aurora://")
    store = open_store(settings)
    try:
        filled = fill(settings, samples, users, prefix)
        fill_s = fill_store(settings, samples, users, prefix, filled["last_offsets"])
        worker, warm = timed_start(settings, store, prefix, 1, "aurora-first")
        stop_worker(worker)  # a clean stop: SIGTERM, flushed
        worker, clean = timed_start(settings, store, prefix, 2, "aurora-clean")
        os.killpg(worker.pid, signal.SIGKILL)  # the whole process group, writer included
        worker.wait(timeout=30)
        worker, killed = timed_start(settings, store, prefix, 3, "aurora-kill")
        stop_worker(worker)
        report["aurora"] = {
            **filled,
            "fill_store_s": round(fill_s, 1),
            "first_start": warm,
            "after_clean_stop": clean,
            "after_sigkill": killed,
            "store_bytes": _store_bytes(settings),
        }
    finally:
        delete_run_leftovers(settings)
    memory = report["memory"]
    report["memory_extrapolated_s"] = round(
        report["aurora"]["records"] / memory["records_per_s"], 1
    )
    return report


def _store_bytes(settings: Settings) -> int:
    base = settings.worker_state_dir / settings.worker_app_id
    return sum(p.stat().st_size for p in base.rglob("*.sqlite*"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--memory-users", type=int, default=20_000)
    parser.add_argument("--name", default="restart")
    args = parser.parse_args()
    report = run(args.users, args.memory_users)
    write_result(args.name, report)
    a, m = report["aurora"], report["memory"]
    print(
        f"{args.users:,} users, {report['state_bytes_per_user']:,} B/user of records: served "
        f"after a clean stop in {a['after_clean_stop']['served_s']} s, after SIGKILL in "
        f"{a['after_sigkill']['served_s']} s (RSS {a['after_sigkill']['rss_mib']} MiB); "
        f"memory:// at {m['users']:,} users {m['served_s']} s "
        f"({m['records_per_s']:,} records/s; {report['memory_extrapolated_s']:,} s at "
        f"{args.users:,} users)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
