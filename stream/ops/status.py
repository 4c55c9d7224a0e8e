"""`python -m stream status`: the pipeline on one screen, and a health check.

Per feature view: rows online (Redis hashes of this Feast project holding the view), rows
offline (its snapshot table), the newest event time online, and freshness (now minus that).
Per event topic: the worker group's lag. The dead-letter topic's size. Per Postgres table: its
oldest and newest day partition, its size, and rows waiting in its DEFAULT partition (which a
`python -m stream partitions` moves into their days). The exit code is 1 when
a view's freshness exceeds its TTL (or it has nothing online): a feature older than its TTL is
one Feast no longer serves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from stream.catalog import EVENT_TYPES, VIEWS
from stream.ops.partitions import Storage
from stream.settings import Settings

SCAN_BATCH = 1_000


@dataclass(frozen=True)
class ViewStatus:
    name: str
    ttl: timedelta
    online_rows: int
    offline_rows: int
    newest_online: datetime | None

    def freshness(self, now: datetime) -> timedelta | None:
        return None if self.newest_online is None else now - self.newest_online

    def healthy(self, now: datetime) -> bool:
        age = self.freshness(now)
        return age is not None and age <= self.ttl


@dataclass(frozen=True)
class Status:
    at: datetime
    views: list[ViewStatus]
    lag: dict[str, int]  # topic -> messages not yet committed by the worker group
    dead_letters: int
    storage: list[Storage]

    @property
    def healthy(self) -> bool:
        return all(v.healthy(self.at) for v in self.views)


def online(settings: Settings) -> dict[str, tuple[int, datetime | None]]:
    """Per view: how many entity hashes of this project hold it, and the newest event time.

    On a Redis Cluster the scan walks every master in turn and the reads go to each key's."""
    from google.protobuf.timestamp_pb2 import Timestamp

    from stream.redis_client import connect

    client = connect(settings)
    suffix = settings.feast_project.encode()
    fields = [f"_ts:{v.name}".encode() for v in VIEWS]
    counts = dict.fromkeys((v.name for v in VIEWS), 0)
    newest: dict[str, int] = {}
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(count=SCAN_BATCH):
            # Feast's key is the serialized entity key followed by the project name.
            if key.endswith(suffix):
                batch.append(key)
            if len(batch) >= SCAN_BATCH:
                _tally(client, batch, fields, counts, newest, Timestamp)
                batch = []
        _tally(client, batch, fields, counts, newest, Timestamp)
    finally:
        client.close()
    return {
        name: (counts[name], datetime.fromtimestamp(newest[name], UTC) if name in newest else None)
        for name in counts
    }


def _tally(
    client: Any,
    keys: list[bytes],
    fields: list[bytes],
    counts: dict[str, int],
    newest: dict[str, int],
    timestamp: Any,
) -> None:
    if not keys:
        return
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.hmget(key, fields)
    for values in pipe.execute():
        for spec, raw in zip(VIEWS, values, strict=True):
            if raw is None:
                continue
            counts[spec.name] += 1
            seconds = timestamp.FromString(raw).seconds
            if seconds > newest.get(spec.name, 0):
                newest[spec.name] = seconds


def offline(settings: Settings) -> dict[str, int]:
    import psycopg
    from psycopg import sql

    counts = {}
    with psycopg.connect(
        settings.postgres_conninfo(), options=f"-c search_path={settings.postgres_schema}"
    ) as conn:
        for spec in VIEWS:
            row = conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(spec.table))
            ).fetchone()
            counts[spec.name] = int(row[0]) if row else 0
    return counts


def tables(settings: Settings) -> list[Storage]:
    from stream.ops.partitions import TABLES, connect, storage

    with connect(settings) as conn:
        return [storage(conn, table) for table in TABLES]


def kafka(settings: Settings) -> tuple[dict[str, int], int]:
    """(lag per event topic for the worker group, messages in the dead-letter topic)."""
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

    security = settings.kafka_client_config()
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, **security)
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False, **security
    )
    try:
        group = settings.worker_app_id
        committed = admin.list_group_offsets(group).get(group, {})
        topics = [settings.topic_for(t) for t in EVENT_TYPES] + [settings.dlq_topic]
        partitions = [
            TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()
        ]
        ends = consumer.end_offsets(partitions)
        starts = consumer.beginning_offsets(partitions)
    finally:
        consumer.close()
        admin.close()
    lag = dict.fromkeys(topics[:-1], 0)
    dead = 0
    for tp, end in ends.items():
        if tp.topic == settings.dlq_topic:
            dead += end - starts.get(tp, 0)
        else:
            meta = committed.get(tp)
            done = meta.offset if meta is not None and meta.offset >= 0 else starts.get(tp, 0)
            lag[tp.topic] += max(0, end - done)
    return lag, dead


def gather(settings: Settings) -> Status:
    on = online(settings)
    off = offline(settings)
    lag, dead = kafka(settings)
    views = [ViewStatus(v.name, v.ttl, on[v.name][0], off[v.name], on[v.name][1]) for v in VIEWS]
    return Status(datetime.now(UTC), views, lag, dead, tables(settings))


def _age(age: timedelta | None) -> str:
    if age is None:
        return "-"
    seconds = max(0, int(age.total_seconds()))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {seconds}s" if minutes else f"{seconds}s"


def render(status: Status) -> str:
    now = status.at
    lines = [
        f"aurora status at {now:%Y-%m-%d %H:%M:%S}Z",
        "",
        f"{'feature view':<24} {'freshness':>10} {'ttl':>6} {'online rows':>12} "
        f"{'offline rows':>13}  newest online",
    ]
    for v in status.views:
        newest = f"{v.newest_online:%Y-%m-%d %H:%M:%S}Z" if v.newest_online else "nothing online"
        flag = "" if v.healthy(now) else "   STALE (older than its TTL)"
        lines.append(
            f"{v.name:<24} {_age(v.freshness(now)):>10} {_age(v.ttl):>6} {v.online_rows:>12,} "
            f"{v.offline_rows:>13,}  {newest}{flag}"
        )
    lines += ["", f"{'topic':<30} {'lag':>10}"]
    lines += [f"{topic:<30} {n:>10,}" for topic, n in status.lag.items()]
    lines += ["", f"dead letters: {status.dead_letters:,}", ""]
    lines += storage_lines(status.storage)
    lines.append("")
    lines.append("healthy" if status.healthy else "NOT healthy: a view is older than its TTL")
    return "\n".join(lines)


def storage_lines(found: list[Storage]) -> list[str]:
    lines = [f"{'table':<24} {'days':>5} {'oldest':>10} {'newest':>10} {'size':>10}  in default"]
    for t in found:
        # An open start is the rows from before the tables were partitioned, in one partition.
        oldest = "-" if not t.partitions else "open" if t.oldest is None else f"{t.oldest:%Y-%m-%d}"
        # A partition's end is the midnight after its last day.
        newest = "-" if t.newest is None else f"{t.newest - timedelta(days=1):%Y-%m-%d}"
        lines.append(
            f"{t.table:<24} {t.partitions:>5} {oldest:>10} {newest:>10} "
            f"{_bytes(t.size_bytes):>10}  {t.default_rows:,}"
        )
    return lines


def _bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size:,.1f} TB"


def main(settings: Settings) -> int:
    began = time.monotonic()
    status = gather(settings)
    print(render(status))
    print(f"({time.monotonic() - began:.1f}s)")
    return 0 if status.healthy else 1
