"""Replay from the Postgres archive, beside the stream's rate and replay's own parts.

N generated mixed events are validated and archived, as the worker would, into a Postgres schema
of the run's own (dropped afterwards, so other runs' events never count). Then, timed apart:

- read: the archive's server-side cursor in event-time order with each event decoded, nothing
  else (the floor for any replay that reads Postgres from Python);
- compute: `Ingestor.process_valid` over the same events in the same order, in memory (the
  aggregation the worker and replay share);
- replay: `stream.replay.run.replay` from the archive, offline writes included (what `make replay`
  does), after Feast is imported once (its import takes seconds, once per process; reported as
  `feast_startup_s`).

The stream's rate is the worker's from the ingest benchmark of the same `make bench` run (or
`bench/results/ingest.json` when this runs alone).

    .venv/bin/python -m bench.bench_replay --events 200000
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from datetime import timedelta
from functools import partial
from typing import Any

import orjson

from bench.bench_ingest import traffic
from bench.common import RESULTS, drop_schema, fresh_settings, rss_mib, write_result
from stream import gcpolicy
from stream.catalog import EVENT_TYPES
from stream.core.ingest import Ingestor
from stream.core.records import ArchiveRow, Message
from stream.featurestore.env import open_store
from stream.replay.run import replay
from stream.replay.sources import SourceStats, archive_source
from stream.replay.span import ReplayRange, parse_moment
from stream.settings import Settings
from stream.sinks.archive import ArchiveSink

ARCHIVE_CHUNK = 50_000


def fill_archive(
    settings: Settings, events_wanted: int, days: int, seed: int, prefix: str
) -> tuple[list[ArchiveRow], ReplayRange, int]:
    """Generate, validate and archive the events; the records, their range, events generated."""
    events = traffic(events_wanted, days, seed, prefix)
    ingestor, _ = Ingestor.in_memory({settings.topic_for(t): t for t in EVENT_TYPES})
    messages = [
        Message(settings.topic_for(g.event_type or "activity"), 0, i, g.key, g.raw)
        for i, g in enumerate(events)
    ]
    records = ingestor.process(messages).archive
    sink = ArchiveSink(settings.postgres_conninfo(), settings.postgres_schema)
    for at in range(0, len(records), ARCHIVE_CHUNK):
        sink.write_rows(records[at : at + ARCHIVE_CHUNK])
    moments = [parse_moment(r[3]) for r in records]
    span = ReplayRange(min(moments) - timedelta(seconds=1), max(moments) + timedelta(seconds=1))
    return records, span, len(events)


def read_only(settings: Settings, span: ReplayRange) -> tuple[int, float]:
    began = time.monotonic()
    n = sum(len(chunk) for chunk in archive_source(settings, span, SourceStats()))
    return n, time.monotonic() - began


def compute_only(records: list[ArchiveRow]) -> tuple[int, float]:
    # As the archive source reads them: by event time, parsed back from the archived JSON.
    ordered = sorted(records, key=lambda r: r[3])
    items = [(orjson.loads(r[4]), Message(r[5], r[6], r[7], None, b"")) for r in ordered]
    ingestor, _ = Ingestor.in_memory()
    began = time.monotonic()
    for at in range(0, len(items), 20_000):
        ingestor.process_valid(items[at : at + 20_000])
    return len(items), time.monotonic() - began


def stream_rate(given: float | None) -> float | None:
    if given is not None:
        return given
    path = RESULTS / "ingest.json"
    if path.exists():
        return float(json.loads(path.read_text())["worker"]["events_per_s"])
    return None


def run(events_wanted: int, days: int, stream_eps: float | None = None) -> dict[str, Any]:
    settings, prefix = fresh_settings()
    schema = settings.postgres_schema
    try:
        print(f"archiving about {events_wanted:,} events in schema {schema} ...", flush=True)
        began = time.monotonic()
        records, span, produced = fill_archive(
            settings, events_wanted, days, int(prefix[5:13], 16), prefix
        )
        fill_s = time.monotonic() - began
        print(f"  {len(records):,} archived in {fill_s:.0f}s; reading ...", flush=True)
        # What `make replay` does before it starts (stream/gcpolicy.py).
        gcpolicy.settle()
        read_n, read_s = read_only(settings, span)
        print(f"  read {read_n:,} in {read_s:.1f}s; computing ...", flush=True)
        compute_n, compute_s = compute_only(records)
        del records
        print(f"  computed {compute_n:,} in {compute_s:.1f}s; replaying ...", flush=True)
        # Feast's import (several seconds, once per process) is start-up, not per-event work.
        began = time.monotonic()
        open_store(settings)
        startup_s = time.monotonic() - began
        gcpolicy.settle()  # freeze what Feast's import made too, outside the start-up figure
        source = partial(archive_source, settings, span)
        report = replay(settings, span, source, "archive", fresh=True, progress_out=io.StringIO())
        peak_rss = rss_mib(os.getpid())
    finally:
        drop_schema(settings)
    streamed = stream_rate(stream_eps)
    return {
        "parameters": {"events_generated": produced, "archived": read_n, "days": days},
        "read": {
            "events": read_n,
            "seconds": round(read_s, 2),
            "events_per_s": round(read_n / read_s),
        },
        "compute": {
            "events": compute_n,
            "seconds": round(compute_s, 2),
            "events_per_s": round(compute_n / compute_s),
        },
        "replay": {
            "events": report.events,
            "users": report.users,
            "rows_written": report.rows_written,
            "seconds": round(report.seconds, 2),
            "events_per_s": round(report.rate),
            "peak_rss_mib": round(peak_rss, 1),
            "feast_startup_s": round(startup_s, 2),
        },
        "stream_events_per_s": streamed,
        "ratios": {
            "replay_over_stream": round(report.rate / streamed, 2) if streamed else None,
            "replay_over_read": round(report.rate / (read_n / read_s), 3),
            "replay_over_compute": round(report.rate / (compute_n / compute_s), 3),
        },
        "target": {"events_per_s": 200_000, "met": report.rate >= 200_000},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--stream-rate", type=float, default=None)
    parser.add_argument("--name", default="replay")
    args = parser.parse_args()
    report = run(args.events, args.days, args.stream_rate)
    write_result(args.name, report)
    r, ratios = report["replay"], report["ratios"]
    print(
        f"replay {r['events_per_s']:,} ev/s | read {report['read']['events_per_s']:,} ev/s | "
        f"compute {report['compute']['events_per_s']:,} ev/s | stream "
        f"{report['stream_events_per_s']} ev/s | replay/stream {ratios['replay_over_stream']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
