"""Hostile messages, drawn by Hypothesis, mixed into a real stream through a real worker.

Every hostile message must end in the dead-letter topic with its reason and original bytes;
none may reach Postgres; the worker must keep running; the valid events around them must give
exactly the reference's features, offline and online.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import psycopg
import pytest
from feast import FeatureStore
from hypothesis import HealthCheck, given, settings
from psycopg import sql

from stream.catalog import EVENT_TYPES, VIEWS
from stream.settings import Settings
from stream.synth.generator import GeneratedEvent
from tests.hostile import HOSTILE_USER_IDS, hostile
from tests.integration.helpers import Worker, produce, traffic, verify_all

pytestmark = pytest.mark.integration


def draw(valid: list[GeneratedEvent], n: int) -> list[bytes]:
    """n messages from the hostile strategy, diverse as Hypothesis makes them (no I/O here)."""
    events = [g.event for g in valid if g.valid and g.event is not None]
    drawn: list[bytes] = []

    @settings(
        max_examples=n, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
    )
    @given(hostile(events))
    def collect(raw: bytes) -> None:
        drawn.append(raw)

    collect()
    return drawn


def test_hostile_messages_end_in_the_dlq_and_change_nothing_else(
    stream_settings: Settings,
    start_worker: Worker,
    feature_store: FeatureStore,
    pg_conn: psycopg.Connection[Any],
    unique: str,
    tmp_path: Path,
) -> None:
    events = traffic(unique, users=10, days=2)
    bad = draw(events, 250)
    rng = random.Random(7)
    mixed = list(events)
    for raw in bad:
        event_type = rng.choice(EVENT_TYPES)
        hostile_event = GeneratedEvent(raw, None, False, event_type, None, False, b"hostile")
        mixed.insert(rng.randrange(len(mixed) + 1), hostile_event)
    worker = start_worker()
    produce(stream_settings, mixed)

    # Archive, offline and online rows equal the reference; the DLQ holds exactly the bad bytes.
    verify_all(stream_settings, feature_store, pg_conn, unique, mixed, tmp_path)
    assert worker.poll() is None, "the worker stopped"
    with pg_conn.cursor() as cur:
        for table in ["raw_events", *(v.table for v in VIEWS)]:
            cur.execute(
                sql.SQL("SELECT count(*) FROM {} WHERE user_id = ANY(%s)").format(
                    sql.Identifier(table)
                ),
                # Postgres text cannot hold NUL, so that one could never be stored anyway.
                ([u for u in HOSTILE_USER_IDS if "\x00" not in u],),
            )
            row = cur.fetchone()
            assert row is not None and row[0] == 0, table
    pg_conn.rollback()
