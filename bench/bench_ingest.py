"""Ingest throughput end to end, beside the consume-only ceiling and the naive per-event push.

On N pre-produced mixed events (late, duplicate and invalid ones included), in fresh topics:

- ceiling: aiokafka reading every message of the same topics and doing nothing else;
- worker: `python -m stream worker`, from its start until every valid event is archived and
  every feature row is in Postgres (the online push of a flush goes out with its offline push);
- naive: what a user would write first, a kafka-python loop that computes each event's row and
  calls `store.push(..., ONLINE_AND_OFFLINE)` once per event, on a sample.

    .venv/bin/python -m bench.bench_ingest --events 200000
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime
from typing import Any

from bench.common import (
    ArchiveProgress,
    CpuMeter,
    delete_run_leftovers,
    fresh_settings,
    offline_rows,
    service_pids,
    start_worker,
    stop_worker,
    tree_rss_mib,
    wait_until,
    write_result,
)
from stream.catalog import EVENT_TYPES, view
from stream.core.events import parse_timestamp
from stream.core.ingest import Ingestor
from stream.core.records import Message
from stream.featurestore.env import open_store
from stream.ops.topics import ensure_topics
from stream.producer import EventProducer
from stream.settings import Settings
from stream.sinks.feast_rows import frame
from stream.synth.generator import GeneratedEvent, GeneratorConfig, default_start, generate
from stream.synth.send import send_to_kafka

EVENTS_PER_USER_DAY = 12  # what the generator's population averages


def traffic(events: int, days: int, seed: int, prefix: str) -> list[GeneratedEvent]:
    return list(generate(traffic_config(events, days, seed, prefix)))


def traffic_config(events: int, days: int, seed: int, prefix: str) -> GeneratorConfig:
    """About `events` events of a population sized for `days` days (the generator streams)."""
    users = max(1, events // (EVENTS_PER_USER_DAY * days))
    return GeneratorConfig(
        users=users,
        days=days,
        seed=seed,
        start=default_start(datetime.now(UTC), days),
        out_of_order=0.02,
        duplicates=0.01,
        invalid=0.005,
        user_prefix=prefix,
    )


def expected(settings: Settings, events: list[GeneratedEvent]) -> tuple[int, int]:
    """(distinct valid events, feature rows) as the worker must write them, computed here."""
    ingestor, _ = Ingestor.in_memory({settings.topic_for(t): t for t in EVENT_TYPES})
    messages = [
        Message(settings.topic_for(g.event_type or "activity"), 0, i, g.key, g.raw)
        for i, g in enumerate(events)
    ]
    result = ingestor.process(messages)
    return len(result.archive), len(result.rows)


async def consume_only(settings: Settings, total: int) -> float:
    """Seconds for aiokafka to read `total` messages of the run's topics, connect included."""
    from aiokafka import AIOKafkaConsumer

    began = time.monotonic()
    consumer = AIOKafkaConsumer(
        *(settings.topic_for(t) for t in EVENT_TYPES),
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    seen = 0
    try:
        while seen < total:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            seen += sum(len(b) for b in batches.values())
    finally:
        await consumer.stop()
    return time.monotonic() - began


def naive(settings: Settings, sample: int) -> dict[str, Any]:
    """A kafka-python loop, one `store.push` per event: the baseline the worker replaces."""
    from feast.data_source import PushMode
    from kafka import KafkaConsumer

    store = open_store(settings)
    ingestor, _ = Ingestor.in_memory({settings.topic_for(t): t for t in EVENT_TYPES})
    consumer = KafkaConsumer(
        *(settings.topic_for(t) for t in EVENT_TYPES),
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=10_000,
    )
    pushed = consumed = 0
    began = time.monotonic()
    for record in consumer:
        consumed += 1
        message = Message(record.topic, record.partition, record.offset, record.key, record.value)
        for row in ingestor.process([message]).rows:
            store.push(
                view(row.view).push_source, frame(row.view, [row]), to=PushMode.ONLINE_AND_OFFLINE
            )
            pushed += 1
        if consumed >= sample:
            break
    seconds = time.monotonic() - began
    consumer.close()
    return {"events": consumed, "rows_pushed": pushed, "seconds": round(seconds, 2),
            "events_per_s": round(consumed / seconds, 1)}  # fmt: skip


def run(
    events_wanted: int,
    days: int,
    naive_sample: int,
    own_schema: bool = True,
    workers: int = 1,
    redis_cluster: bool = False,
    schema: str | None = None,
    exact_count: bool = True,
) -> dict[str, Any]:
    """`naive_sample` 0 leaves the naive push out; `redis_cluster` puts the online store on the
    local stack's 3-master cluster (started if it is not running); `schema` writes into that
    existing Postgres schema and keeps it (bench.bench_growth's long history); `exact_count`
    False ends on the archive's insert counter and the exact count of the rows offline."""
    if schema is None:
        settings, prefix = fresh_settings(own_schema)
    else:
        settings, prefix = fresh_settings(False, postgres_schema=schema)
    if redis_cluster:
        from devstack.redis_cluster import RedisClusterStack

        settings = settings.on_stack_redis_cluster()
        RedisClusterStack(settings).up()
    ensure_topics(settings)
    seed = int(prefix[5:13], 16)
    print(f"generating about {events_wanted:,} events ...", flush=True)
    events = traffic(events_wanted, days, seed, prefix)
    distinct_valid, rows = expected(settings, events)
    print(f"producing {len(events):,} events ({distinct_valid:,} distinct valid) ...", flush=True)
    began = time.monotonic()
    with EventProducer(settings) as producer:
        send_to_kafka(events, producer, settings)
        producer.flush()
    produce_s = time.monotonic() - began

    print("consume-only ceiling (aiokafka, no processing) ...", flush=True)
    ceiling_s = asyncio.run(consume_only(settings, len(events)))

    print("worker ..." if workers == 1 else f"worker, {workers} processes ...", flush=True)
    # The oldest event time bounds the exact count to the run's days of a long history.
    since = min(parse_timestamp(g.event["event_timestamp"]) for g in events if g.event and g.valid)
    # Made before the worker writes; see ArchiveProgress for `exact_count`.
    archived = ArchiveProgress(settings, prefix, distinct_valid, since, exact_count)
    began = time.monotonic()
    worker = start_worker(settings.model_copy(update={"worker_processes": workers}), "ingest")
    peak_rss = 0.0
    # From the first archived event (start-up, Feast's import and the rebalance, excluded).
    meter = CpuMeter(worker.pid, service_pids(settings))
    try:

        def progress() -> int:
            nonlocal peak_rss
            peak_rss = max(peak_rss, tree_rss_mib(worker.pid))
            done = archived()
            if done:
                meter.mark(done)
            return done

        wait_until(progress, distinct_valid, 3600, "events archived", worker)
        wait_until(lambda: offline_rows(settings, prefix), rows, 600, "rows offline", worker)
        worker_s = time.monotonic() - began
        cpu = meter.per_event(distinct_valid)
    finally:
        stop_worker(worker)

    naive_result: dict[str, Any] | None = None
    if naive_sample:
        print(f"naive per-event push on a sample of {naive_sample} ...", flush=True)
        naive_result = naive(settings, naive_sample)
    delete_run_leftovers(settings, keep_schema=schema is not None)

    ingest_rate = len(events) / worker_s
    ceiling_rate = len(events) / ceiling_s
    return {
        "parameters": {
            "events": len(events),
            "days": days,
            "distinct_valid": distinct_valid,
            "rows": rows,
            "naive_sample": naive_sample,
            "postgres_schema": schema or ("own" if own_schema else settings.postgres_schema),
            "workers": workers,
            "online_store": "redis_cluster (3 masters)" if redis_cluster else "redis",
        },
        "produce_s": round(produce_s, 2),
        "ceiling": {"seconds": round(ceiling_s, 2), "events_per_s": round(ceiling_rate)},
        "worker": {
            "seconds": round(worker_s, 2),
            "events_per_s": round(ingest_rate),
            "peak_rss_mib": round(peak_rss, 1),
            # None where too few events came after the first archived one (a quick run).
            "steady_events_per_s": (
                round(cpu["events"] / cpu["seconds"]) if cpu["measured"] else None
            ),
            "cpu": cpu,
        },
        "naive": naive_result,
        "ratios": {
            "worker_over_ceiling": round(ingest_rate / ceiling_rate, 3),
            "worker_over_naive": (
                round(ingest_rate / naive_result["events_per_s"], 1) if naive_result else None
            ),
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--naive-sample", type=int, default=300)
    parser.add_argument("--name", default="ingest")
    parser.add_argument(
        "--shared-schema",
        action="store_true",
        help="archive into the stack's schema, beside every earlier run's rows, not a new one",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes (AURORA_WORKER_PROCESSES), all in the group; the target is for one",
    )
    parser.add_argument(
        "--redis-cluster",
        action="store_true",
        help="online store on the local 3-master Redis Cluster (bench.bench_cluster compares)",
    )
    args = parser.parse_args()
    report = run(
        args.events,
        args.days,
        args.naive_sample,
        own_schema=not args.shared_schema,
        workers=args.workers,
        redis_cluster=args.redis_cluster,
    )
    write_result(args.name, report)
    w, c, n, r = report["worker"], report["ceiling"], report["naive"], report["ratios"]
    naive_rate = f"{n['events_per_s']} ev/s" if n else "not run"
    print(
        f"worker {w['events_per_s']:,} ev/s | ceiling {c['events_per_s']:,} ev/s | "
        f"naive {naive_rate} | worker/ceiling {r['worker_over_ceiling']} | "
        f"worker/naive {r['worker_over_naive']}x | peak RSS {w['peak_rss_mib']} MiB"
    )
    cpu = w["cpu"]
    if w["steady_events_per_s"] is None:
        print(f"steady state not measured: {cpu['events']:,} events after the first archived one")
    else:
        parts = ", ".join(f"{k} {v:,}" for k, v in cpu["us_per_event"].items())
        print(
            f"steady {w['steady_events_per_s']:,} ev/s; CPU per event "
            f"{cpu['total_us_per_event']:,} us ({parts}); {cpu['cores_busy']} cores busy"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
