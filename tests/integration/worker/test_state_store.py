"""The local state store and static membership, against a real worker, Kafka and the stores.

A stopped worker's store holds the changelog up to its end, so a restart reads no tail; a
worker killed during its recovery, or its store lost, rebuilds from the changelog and loses
nothing; a duplicate sent weeks of event time after its original is still not counted twice;
and a restarted worker gets its own partitions back, leaving the others' where they are.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg
from feast import FeatureStore
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient

from stream.settings import Settings
from tests.integration.helpers import (
    Worker,
    produce,
    produce_archived,
    traffic,
    verify_all,
    wait_for,
)

CHANGELOG = "{app}-user-state-changelog"


def store_file(settings: Settings) -> Path:
    """The first slot's store of this test's app (the only slot one worker takes)."""
    (path,) = (settings.worker_state_dir / settings.worker_app_id).glob("*-0/user-state.sqlite")
    return path


def stored_offsets(path: Path) -> dict[int, int]:
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT partition, offset FROM offsets").fetchall())


def changelog_ends(settings: Settings) -> dict[int, int]:
    topic = CHANGELOG.format(app=settings.worker_app_id)
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return {tp.partition: end for tp, end in consumer.end_offsets(parts).items() if end}
    finally:
        consumer.close()


def stop(worker: subprocess.Popen[bytes]) -> None:
    os.killpg(worker.pid, signal.SIGTERM)
    worker.wait(timeout=60)


def kill(worker: subprocess.Popen[bytes]) -> None:
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=30)


def test_a_stopped_worker_leaves_a_store_that_holds_the_whole_changelog(
    stream_settings: Settings,
    start_worker: Worker,
    feature_store: FeatureStore,
    pg_conn: psycopg.Connection[Any],
    unique: str,
    tmp_path: Path,
) -> None:
    events = traffic(unique, users=16, days=3)
    half = len(events) // 2
    worker = start_worker()
    produce_archived(stream_settings, pg_conn, unique, events[:half], "the first half", tmp_path)
    stop(worker)
    # Every changelog record is in the store: a restart has no tail to read.
    ends = changelog_ends(stream_settings)
    assert ends and stored_offsets(store_file(stream_settings)) == {
        p: end - 1 for p, end in ends.items()
    }
    start_worker()
    produce(stream_settings, events[half:])
    verify_all(stream_settings, feature_store, pg_conn, unique, events, tmp_path)


def test_a_worker_killed_in_its_recovery_and_a_lost_store_lose_nothing(
    stream_settings: Settings,
    start_worker: Worker,
    feature_store: FeatureStore,
    pg_conn: psycopg.Connection[Any],
    unique: str,
    tmp_path: Path,
) -> None:
    events = traffic(unique, users=40, days=6)
    third = len(events) // 3
    worker = start_worker()
    produce_archived(stream_settings, pg_conn, unique, events[:third], "the first third", tmp_path)
    stop(worker)
    # The disk is lost: the next worker rebuilds its store from the changelog...
    shutil.rmtree(store_file(stream_settings).parent)
    produce(stream_settings, events[third : 2 * third])
    second = start_worker()
    log = tmp_path / "worker-1.log"
    wait_for(lambda: "Restoring state from changelog" in log.read_text(), 120, "recovery", tmp_path)
    kill(second)  # ... and is killed while it does
    start_worker()
    produce(stream_settings, events[2 * third :])
    verify_all(stream_settings, feature_store, pg_conn, unique, events, tmp_path)


def test_a_duplicate_weeks_after_its_original_is_not_counted_again(
    stream_settings: Settings,
    start_worker: Worker,
    feature_store: FeatureStore,
    pg_conn: psycopg.Connection[Any],
    unique: str,
    tmp_path: Path,
) -> None:
    events = traffic(unique, users=4, days=26)
    original = next(g for g in events if g.valid and g.event is not None)
    worker = start_worker()
    produce_archived(stream_settings, pg_conn, unique, events, "the stream", tmp_path)
    stop(worker)  # its state now comes back from the store
    start_worker()
    # The first event again, after 25 days of newer events of its user: the archive's key would
    # take it, so only the state's ids keep it from being counted twice.
    produce(stream_settings, [original])
    verify_all(stream_settings, feature_store, pg_conn, unique, [*events, original], tmp_path)


def members(settings: Settings) -> dict[str, set[tuple[str, int]]]:
    """Each static member of the group, by instance id, with its event-topic partitions."""
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        group = admin.describe_groups([settings.worker_app_id])[settings.worker_app_id]
    finally:
        admin.close()
    found: dict[str, set[tuple[str, int]]] = {}
    for member in group["members"]:
        assigned = (member.get("member_assignment") or {}).get("assigned_partitions", [])
        found[str(member["group_instance_id"])] = {
            (part["topic"], p)
            for part in assigned
            if part["topic"].startswith(f"{settings.topic_prefix}.")
            for p in part["partitions"]
        }
    return found


def test_a_restarted_worker_gets_its_own_partitions_back_at_once(
    stream_settings: Settings,
    start_worker: Worker,
    pg_conn: psycopg.Connection[Any],
    unique: str,
    tmp_path: Path,
) -> None:
    # Two workers of the group on this machine take slots 0 and 1.
    first = start_worker()
    wait_for(lambda: len(members(stream_settings)) == 1, 120, "the first member", tmp_path)
    start_worker()
    wait_for(lambda: len(members(stream_settings)) == 2, 120, "the second member", tmp_path)
    wait_for(lambda: all(members(stream_settings).values()), 120, "an assignment each", tmp_path)
    before = members(stream_settings)
    assert all(name.startswith(stream_settings.worker_app_id) for name in before)
    kill(first)
    began = time.monotonic()
    start_worker()  # takes the slot the killed one freed, and its group instance id
    events = traffic(unique, users=8, days=1)
    produce_archived(stream_settings, pg_conn, unique, events, "the events", tmp_path, 120)
    # Well within the session timeout the dead process would otherwise have been waited out.
    assert time.monotonic() - began < stream_settings.worker_session_timeout_s
    assert members(stream_settings) == before
