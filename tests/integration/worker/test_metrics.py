"""The worker's Prometheus endpoint, scraped during and after a real run."""

from __future__ import annotations

import socket
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from stream.core.events import event_seconds
from stream.core.state import VIEW_OF
from stream.settings import Settings
from tests.integration.helpers import (
    Worker,
    archived,
    distinct_valid,
    produce,
    traffic,
    wait_for,
)

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


Samples = dict[str, list[tuple[dict[str, str], float]]]


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def value(
    samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str
) -> float:
    return sum(v for got, v in samples.get(name, []) if labels.items() <= got.items())


def test_metrics_count_what_the_worker_did(
    stream_settings: Settings,
    start_worker: Worker,
    pg_conn: psycopg.Connection[Any],
    unique: str,
    tmp_path: Path,
) -> None:
    port = free_port()
    settings = stream_settings.model_copy(update={"worker_metrics_port": port})
    events = traffic(unique, users=10, days=2)
    start_worker(settings)
    wait_for(lambda: _answers(port), 120, "the metrics endpoint", tmp_path)
    produce(settings, events)
    distinct = distinct_valid(events)
    wait_for(lambda: archived(pg_conn, unique) == distinct, 240, "the archive", tmp_path)

    deadline = time.monotonic() + 30
    while True:  # the lag gauge is refreshed every few seconds
        samples = scrape(port)
        # Present, not only summing to 0: the worker may archive everything before its first
        # refresh, and an absent gauge sums to 0 too.
        refreshed = "aurora_consumer_lag" in samples
        if refreshed and value(samples, "aurora_consumer_lag") == 0:
            break
        if time.monotonic() > deadline:
            break
        time.sleep(1)

    sent = Counter(g.event_type for g in events)
    invalid = Counter(g.event_type for g in events if not g.valid)
    for event_type, n in sent.items():
        got = value(samples, "aurora_events_total", event_type=event_type, outcome="consumed")
        assert got == n, event_type
        bad = value(samples, "aurora_events_total", event_type=event_type, outcome="invalid")
        assert bad == invalid[event_type], event_type
    assert value(samples, "aurora_dead_letters_total") == sum(invalid.values())
    assert value(samples, "aurora_events_total", outcome="applied") == distinct
    assert value(samples, "aurora_push_batch_rows_count") >= 1
    assert value(samples, "aurora_push_batch_rows_sum") == value(
        samples, "aurora_events_total", outcome="applied"
    )
    assert value(samples, "aurora_push_seconds_count") >= 1
    lags = samples["aurora_consumer_lag"]
    assert {labels["topic"] for labels, _ in lags} == {settings.topic_for(t) for t in sent}
    assert value(samples, "aurora_consumer_lag") == 0
    # Freshness is now minus the newest event time pushed per view, computed at the scrape: the
    # sweep is off here, so the newest row of a view is that of its newest valid event.
    newest: dict[str, float] = {}
    for g in events:
        if g.valid and g.event:
            view_name = VIEW_OF[g.event["event_type"]]
            newest[view_name] = max(newest.get(view_name, 0.0), event_seconds(g.event))
    before = time.time()
    scraped = scrape(port)["aurora_feature_freshness_seconds"]
    after = time.time()
    freshness = {labels["view"]: v for labels, v in scraped}
    assert freshness.keys() == newest.keys()
    for view_name, seconds in freshness.items():
        low, high = before - newest[view_name], after - newest[view_name]
        assert low - 1 <= seconds <= high + 1, (view_name, seconds, low, high)


def _answers(port: int) -> bool:
    try:
        scrape(port)
    except OSError:
        return False
    return True
