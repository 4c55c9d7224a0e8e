"""The worker's Prometheus metrics, served over HTTP (AURORA_WORKER_METRICS_PORT, /metrics).

Counters and histograms are updated by the event loop as batches are processed and written;
consumer lag is refreshed by a timer; freshness is computed when scraped, so it keeps growing
while nothing is pushed (an idle or stuck worker shows it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from stream.core.ingest import BatchResult

logger = logging.getLogger(__name__)

ROW_BUCKETS = (1, 10, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000)
SECOND_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class _Freshness(Collector):
    """now - the newest event time pushed, per feature view."""

    def __init__(self) -> None:
        self.newest_us: dict[str, int] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "aurora_feature_freshness_seconds",
            "Seconds between now and the newest event time this worker pushed, per view",
            labels=["view"],
        )
        now_us = time.time_ns() // 1000
        for view, newest in sorted(self.newest_us.items()):
            family.add_metric([view], (now_us - newest) / 1e6)
        yield family


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events = Counter(
            "aurora_events",
            "Events consumed, by type and outcome (consumed, valid, invalid, applied, "
            "duplicate, too_late)",
            ["event_type", "outcome"],
            registry=r,
        )
        self.dead_letters = Counter(
            "aurora_dead_letters", "Messages sent to the dead-letter topic", registry=r
        )
        self.batch_rows = Histogram(
            "aurora_push_batch_rows", "Feature rows per write", buckets=ROW_BUCKETS, registry=r
        )
        self.batch_seconds = Histogram(
            "aurora_push_seconds",
            "Seconds per write (online push, offline push and archive, retries included)",
            buckets=SECOND_BUCKETS,
            registry=r,
        )
        self.retries = Counter(
            "aurora_write_retries", "Writes retried after a transient failure", registry=r
        )
        self.stall_seeks = Counter(
            "aurora_stall_seeks",
            "Times the worker, stalled with unread events, read again from the committed offsets",
            registry=r,
        )
        self.lag = Gauge(
            "aurora_consumer_lag",
            "Messages in the partition after the worker's read position",
            ["topic", "partition"],
            registry=r,
        )
        self._freshness = _Freshness()
        r.register(self._freshness)

    def batch(self, event_type: str, consumed: int, result: BatchResult) -> None:
        invalid = result.counts.get("invalid", 0)
        self.events.labels(event_type, "consumed").inc(consumed)
        self.events.labels(event_type, "valid").inc(consumed - invalid)
        for outcome, n in result.counts.items():
            self.events.labels(event_type, outcome).inc(n)
        self.dead_letters.inc(len(result.dead_letters))

    def written(
        self, newest_us: Mapping[str, int], n_rows: int, seconds: float, retries: int
    ) -> None:
        """A write done: its size, time and retries, and the newest row time per view."""
        self.batch_rows.observe(n_rows)
        self.batch_seconds.observe(seconds)
        self.retries.inc(retries)
        newest = self._freshness.newest_us
        for view_name, row_us in newest_us.items():
            if row_us > newest.get(view_name, 0):
                newest[view_name] = row_us

    def set_lag(self, lags: Mapping[tuple[str, int], int]) -> None:
        for (topic, partition), value in lags.items():
            self.lag.labels(topic, str(partition)).set(value)

    def serve(self, port: int, host: str = "0.0.0.0") -> bool:  # noqa: S104 - scraped remotely
        """Serve /metrics on a thread; False (and a warning) when the port is taken."""
        try:
            start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            logger.warning("metrics not served: port %d: %s", port, exc)
            return False
        logger.info("metrics on http://%s:%d/metrics", host, port)
        return True
