"""Replay from the Postgres archive, beside the stream's rate and replay's own parts.

N generated mixed events are validated and archived, as the worker would, into a Postgres schema
of the run's own (dropped afterwards, so other runs' events never count). Then, timed apart:

- read: the archive's server-side cursor in event-time order with each event decoded, nothing
  else (the floor for any replay that reads Postgres from Python);
- compute: `Ingestor.process_valid` over the same events in the same order, in memory (the
  aggregation the worker and replay share);
- replay: `stream.replay.run.replay` from the archive, offline writes included (what `make replay`
  does), after Feast is imported once (its import takes seconds, once per process; reported as
  `feast_startup_s`) and the registry checked against the catalog (seconds, once per registry,
  then kept; `registry_check_s`).

The stream's rate is the worker's from the ingest benchmark of the same `make bench` run (or
`bench/results/ingest.json` when this runs alone).

Sharded (#31), on the same archive, side by side and alternating (1, N, 1, N ...): `python -m
stream replay --processes 1` and `--processes N` run as an operator runs them, each in a process
of its own (start-up included; measured from outside, so that the spawned shards and writers
import what the command imports, not this benchmark), with the CPU seconds of each part (the
replay or its shards, their writers) and of the Postgres backends serving them (tagged with
PGAPPNAME, apart from other users of a shared server) from /proc; and one shard's read of the
archive with the shard filter in the query against reading every event and filtering by user
id in Python. Then each user's online rows are written to Redis and their bytes measured.

    .venv/bin/python -m bench.bench_replay --events 200000 --processes 2 --rounds 2
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import subprocess
import sys
import time
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import psycopg

from bench.bench_ingest import traffic
from bench.common import (
    RESULTS,
    cpu_s,
    drop_schema,
    fresh_settings,
    rss_mib,
    write_result,
)
from devstack.proc import children
from stream import gcpolicy
from stream.catalog import EVENT_TYPES
from stream.core.ingest import Ingestor
from stream.core.records import ArchiveRow, Message
from stream.featurestore.env import open_store
from stream.replay.run import replay, replay_sinks
from stream.replay.shard import Shard, shard_of
from stream.replay.sources import SourceStats, archive_source
from stream.replay.span import ReplayRange, parse_moment
from stream.settings import Settings, get_settings
from stream.sinks.archive import ArchiveSink
from stream.sinks.writer import registry_verdict

ARCHIVE_CHUNK = 50_000
# The application_name of this benchmark's Postgres connections (libpq reads PGAPPNAME), so that
# the CPU of its own backends can be told from other users' of a shared server.
APP_NAME = f"bench-replay-{os.getpid()}"
# The states compute_only made, for redis_bytes.
COMPUTED: dict[tuple[str, str], Any] = {}


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


def read_shard_in_python(settings: Settings, span: ReplayRange, shard: Shard) -> tuple[int, float]:
    """One shard's events as the archive source reads them, but filtered here, not in the query:
    every event of the range crosses the socket, only the shard's are decoded."""
    began = time.monotonic()
    n = 0
    with (
        psycopg.connect(
            settings.postgres_conninfo(), options=f"-c search_path={settings.postgres_schema}"
        ) as conn,
        conn.cursor(name="bench_python_filter") as cur,
    ):
        cur.itersize = 20_000
        cur.execute(
            "SELECT user_id, event::text FROM raw_events "
            "WHERE event_timestamp >= %s AND event_timestamp < %s "
            "ORDER BY event_timestamp, source_topic, source_partition, source_offset, event_id",
            (span.read_from, span.end),
        )
        while rows := cur.fetchmany(20_000):
            n += len([orjson.loads(t) for u, t in rows if shard_of(u, shard.count) == shard.index])
    return n, time.monotonic() - began


class CpuSplit:
    """CPU seconds between start and stop of this process's descendants, by depth, and of the
    Postgres backends this run opened.

    Living processes are sampled (a process's own counters vanish when it is reaped); the total
    of the descendants comes from this process's counter of its reaped children, exact.
    `labels` names each depth below this process (1: its children); `own` adds this process's
    own CPU under that name. multiprocessing's resource tracker is left out of the split.
    """

    def __init__(self, labels: dict[int, str], own: str | None = None) -> None:
        import threading

        self.pid, self.labels, self.own_label = os.getpid(), labels, own
        self.seen: dict[int, tuple[int, float]] = {}  # pid -> (depth, latest CPU seconds)
        self.backends: dict[int, float] = {}  # this run's Postgres backends: pid -> CPU seconds
        self._pg = psycopg.connect(
            get_settings().postgres_conninfo(), autocommit=True, application_name="bench-meter"
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self.began = time.monotonic()
        self.own = cpu_s(self.pid, reaped=False)
        self.all = cpu_s(self.pid, reaped=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            todo = [(c, 1) for c in children(self.pid)]
            while todo:
                pid, depth = todo.pop()
                try:
                    if b"resource_tracker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                        continue
                    self.seen[pid] = (depth, cpu_s(pid, reaped=False))
                    todo.extend((c, depth + 1) for c in children(pid))
                except (FileNotFoundError, ProcessLookupError):
                    continue
            # Postgres's own CPU for this run alone: the backends serving the connections this
            # process and its children opened (PGAPPNAME, set in run()); others share the server.
            for (pid,) in self._pg.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (APP_NAME,)
            ).fetchall():
                with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                    self.backends[pid] = cpu_s(pid, reaped=False)

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join()
        self._pg.close()
        seconds = time.monotonic() - self.began
        own = cpu_s(self.pid, reaped=False) - self.own
        descendants = cpu_s(self.pid, reaped=True) - self.all - own
        parts = {self.own_label: own} if self.own_label else {}
        for depth, label in self.labels.items():
            parts[label] = sum(c for d, c in self.seen.values() if d == depth)
        ours = sum(self.backends.values())
        processes = descendants + (own if self.own_label else 0.0)
        return {
            "seconds": round(seconds, 2),
            "cpu_s": {k: round(v, 2) for k, v in parts.items()},
            "replay_processes_cpu_s": round(processes, 2),
            "postgres_backends_cpu_s": round(ours, 2),
            "cores_busy": round((processes + ours) / seconds, 2),
        }


def replay_command(
    settings: Settings, span: ReplayRange, processes: int, checkout: Path | None = None
) -> tuple[int, float, dict[str, Any]]:
    """`python -m stream replay --processes N` as an operator runs it; events, wall seconds and
    the CPU split. Its own process, so that the shards and writers it spawns import what the
    command imports, not this benchmark's modules (spawn imports the parent's main module).
    With `checkout`, that checkout's replay (its `stream` package, run from its folder, with its
    `.venv` when it has one): the baseline of a before-and-after comparison."""
    labels = (
        {1: "replay main", 2: "writer"}
        if processes == 1
        else {1: "display", 2: "shard processes", 3: "shard writers"}
    )
    split = CpuSplit(labels)
    python = sys.executable
    if checkout is not None and (checkout / ".venv" / "bin" / "python").exists():
        python = str(checkout / ".venv" / "bin" / "python")
    began = time.monotonic()
    done = subprocess.run(
        [
            python, "-m", "stream", "replay", "--source", "postgres", "--fresh",
            "--from", span.start.isoformat(), "--to", span.end.isoformat(),
            "--processes", str(processes),
        ],
        env={**os.environ, **settings.to_env(), "PGAPPNAME": APP_NAME},
        capture_output=True, text=True, check=False, cwd=checkout,
    )  # fmt: skip
    seconds = time.monotonic() - began
    cpu = split.stop()
    if done.returncode != 0:
        raise RuntimeError(f"replay --processes {processes} failed:\n{done.stderr[-3000:]}")
    found = re.search(r"replayed ([\d,]+) events", done.stdout)
    if found is None:
        raise RuntimeError(f"no summary in the replay's output: {done.stdout[-1000:]}")
    return int(found.group(1).replace(",", "")), seconds, cpu


def sharded_rounds(
    settings: Settings,
    span: ReplayRange,
    processes: int,
    rounds: int,
    baseline: Path | None = None,
) -> dict[str, Any]:
    """`make replay` with 1 and with `processes` shards, alternating, `rounds` times each; with
    a `baseline` checkout, its replay too, run after each of this one's (same archive, same
    machine, interleaved: the before and after of a change)."""
    runs: list[dict[str, Any]] = []
    codes: list[Path | None] = [None] if baseline is None else [None, baseline]
    for number in range(rounds):
        for n in (1, processes):
            for checkout in codes:
                events, seconds, cpu = replay_command(settings, span, n, checkout)
                rate = events / seconds
                runs.append(
                    {
                        "round": number + 1,
                        "processes": n,
                        "code": "this" if checkout is None else "baseline",
                        "events": events,
                        "seconds": round(seconds, 2),
                        "events_per_s": round(rate),
                        **{k: v for k, v in cpu.items() if k != "seconds"},
                        "us_per_event": {
                            k: round(v / events * 1e6, 1) for k, v in cpu["cpu_s"].items()
                        }
                        | {"postgres": round(cpu["postgres_backends_cpu_s"] / events * 1e6, 1)},
                    }
                )
                print(
                    f"  round {number + 1}, {n} process(es)"
                    f"{'' if checkout is None else ', baseline'}: {rate:,.0f} ev/s, "
                    f"{cpu['cores_busy']} cores busy, CPU {cpu['cpu_s']}, postgres "
                    f"{cpu['postgres_backends_cpu_s']} s",
                    flush=True,
                )

    def rates(n: int, code: str = "this") -> list[float]:
        return [float(r["events_per_s"]) for r in runs if r["processes"] == n and r["code"] == code]

    def mean_rate(n: int, code: str = "this") -> float:
        return sum(rates(n, code)) / len(rates(n, code))

    per_round = [round(many / one, 3) for one, many in zip(rates(1), rates(processes), strict=True)]
    result: dict[str, Any] = {
        "processes": processes,
        "rounds": rounds,
        "runs": runs,
        "one_events_per_s": round(mean_rate(1)),
        "many_events_per_s": round(mean_rate(processes)),
        "speedup": round(mean_rate(processes) / mean_rate(1), 3),
        "speedup_per_round": per_round,
        "target": {"speedup": 1.6, "met": mean_rate(processes) / mean_rate(1) >= 1.6},
    }
    if baseline is not None:
        result["baseline"] = {
            "checkout": str(baseline),
            "commit": subprocess.run(
                ["git", "-C", str(baseline), "rev-parse", "--short", "HEAD"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip(),
            "one_events_per_s": round(mean_rate(1, "baseline")),
            "many_events_per_s": round(mean_rate(processes, "baseline")),
            "this_over_baseline": {
                "1": round(mean_rate(1) / mean_rate(1, "baseline"), 3),
                str(processes): round(mean_rate(processes) / mean_rate(processes, "baseline"), 3),
            },
        }
    return result


def redis_bytes(
    settings: Settings, prefix: str, states: dict[tuple[str, str], Any]
) -> dict[str, Any]:
    """Redis bytes a user's online rows take: each state's latest row written as the writer
    writes it, then MEMORY USAGE (exact, SAMPLES 0) of the run's keys, then the keys deleted.
    Per key, not the server's total: other users of a shared Redis do not count."""
    from stream.redis_client import connect
    from stream.sinks.base import Flush
    from stream.sinks.redis_rows import RedisOnlineSink

    rows = [r for s in states.values() if (r := s.row_at((s.last_row_us or 0) + 1))]
    sink = RedisOnlineSink(settings)
    sink.setup()
    try:
        sink.write(Flush(rows, online=True, offline=False))
    finally:
        sink.close()
    client = connect(settings)
    try:
        keys = list(client.scan_iter(match=f"*{prefix}*".encode(), count=10_000))
        # redis-py types the reply as sync-or-async; this client is the synchronous one.
        total = sum(int(client.memory_usage(k, samples=0) or 0) for k in keys)  # type: ignore[misc, arg-type]
        for at in range(0, len(keys), 10_000):
            client.unlink(*keys[at : at + 10_000])
    finally:
        client.close()
    users = len({user for user, _ in states})
    return {
        "users": users,
        "keys": len(keys),
        "rows": len(rows),
        "bytes": total,
        "bytes_per_user": round(total / max(1, users)),
    }


def compute_only(records: list[ArchiveRow]) -> tuple[int, float]:
    # As the archive source reads them: by event time, parsed back from the archived JSON.
    ordered = sorted(records, key=lambda r: r[3])
    items = [(orjson.loads(r[4]), Message(r[5], r[6], r[7], None, b"")) for r in ordered]
    ingestor, states = Ingestor.in_memory()
    began = time.monotonic()
    for at in range(0, len(items), 20_000):
        ingestor.process_valid(items[at : at + 20_000])
    COMPUTED.clear()
    COMPUTED.update(states)  # kept for the Redis measurement, after the timing
    return len(items), time.monotonic() - began


def table_bytes(settings: Settings) -> dict[str, int]:
    """Bytes on disk (heap, indexes, TOAST) of the archive and of all snapshot tables, with
    their partitions."""
    from stream.catalog import VIEWS

    with psycopg.connect(settings.postgres_conninfo()) as conn:

        def size(table: str) -> int:
            # Summed over the partitions: a partitioned table (#30) holds no bytes itself.
            row = conn.execute(
                "SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM pg_partition_tree("
                "format('%%I.%%I', %s::text, %s::text)::regclass)",
                (settings.postgres_schema, table),
            ).fetchone()
            return int(row[0]) if row else 0

        return {
            "archive_bytes": size("raw_events"),
            "snapshot_bytes": sum(size(v.table) for v in VIEWS),
        }


def stream_rate(given: float | None) -> float | None:
    if given is not None:
        return given
    path = RESULTS / "ingest.json"
    if path.exists():
        return float(json.loads(path.read_text())["worker"]["events_per_s"])
    return None


def run(
    events_wanted: int,
    days: int,
    stream_eps: float | None = None,
    processes: int = 2,
    rounds: int = 2,
    baseline: Path | None = None,
) -> dict[str, Any]:
    os.environ["PGAPPNAME"] = APP_NAME  # inherited by the shard and writer processes
    load_before = os.getloadavg()  # how shared the machine was: rates depend on it
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
        online = redis_bytes(settings, prefix, COMPUTED)
        COMPUTED.clear()
        print(f"  computed {compute_n:,} in {compute_s:.1f}s; replaying ...", flush=True)
        # Feast's import (several seconds, once per process) is start-up, not per-event work.
        began = time.monotonic()
        open_store(settings)
        startup_s = time.monotonic() - began
        gcpolicy.settle()  # freeze what Feast's import made too, outside the start-up figure
        # The registry check (Feast's import in a child process), made once per registry and
        # kept (stream/featurestore/agreement.py): start-up, timed on its own, not per event.
        began = time.monotonic()
        registry_verdict(settings, replay_sinks(online=False))
        check_s = time.monotonic() - began
        source = partial(archive_source, settings, span)
        split = CpuSplit({1: "writer"}, own="replay main")
        report = replay(settings, span, source, "archive", fresh=True, progress_out=io.StringIO())
        replay_cpu = split.stop()
        # Before the sharded runs replace every row (and leave dead ones until a vacuum).
        sizes = table_bytes(settings)
        peak_rss = rss_mib(os.getpid())
        print(
            f"  replayed {report.rate:,.0f} ev/s in process, CPU {replay_cpu['cpu_s']}, postgres "
            f"{replay_cpu['postgres_backends_cpu_s']} s; shard reads ...",
            flush=True,
        )
        half = Shard(0, 2)
        began = time.monotonic()
        sql_n = sum(len(c) for c in archive_source(settings, span, SourceStats(), shard=half))
        sql_s = time.monotonic() - began
        python_n, python_s = read_shard_in_python(settings, span, half)
        assert sql_n == python_n, (sql_n, python_n)
        print(f"  sharded replay, 1 against {processes} processes ...", flush=True)
        shards = sharded_rounds(settings, span, processes, rounds, baseline)
    finally:
        drop_schema(settings)
    streamed = stream_rate(stream_eps)
    return {
        "parameters": {"events_generated": produced, "archived": read_n, "days": days},
        "load_average": {
            "before": [round(x, 2) for x in load_before],
            "after": [round(x, 2) for x in os.getloadavg()],
        },
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
            "registry_check_s": round(check_s, 2),
            "cpu": replay_cpu,
        },
        "shard_read": {
            "shard": "0/2",
            "events": sql_n,
            "filter_in_query_s": round(sql_s, 2),
            "filter_in_python_s": round(python_s, 2),
        },
        "sharded": shards,
        "redis": online,
        "storage": {**sizes, "archived_rows": read_n, "snapshot_rows": report.rows_written},
        "stream_events_per_s": streamed,
        "ratios": {
            "replay_over_stream": round(report.rate / streamed, 2) if streamed else None,
            "replay_over_read": round(report.rate / (read_n / read_s), 3),
            "replay_over_compute": round(report.rate / (compute_n / compute_s), 3),
            "sharded_one_over_compute": round(
                shards["one_events_per_s"] / (compute_n / compute_s), 3
            ),
        },
        "target": {"events_per_s": 200_000, "met": report.rate >= 200_000},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--stream-rate", type=float, default=None)
    parser.add_argument("--processes", type=int, default=2, help="shards to compare with one")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of 1 and N")
    parser.add_argument("--name", default="replay")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout (a git worktree of an older commit, its native core built) whose "
        "replay runs interleaved with this one's in the sharded rounds: before and after",
    )
    args = parser.parse_args()
    report = run(
        args.events, args.days, args.stream_rate, args.processes, args.rounds, args.baseline
    )
    write_result(args.name, report)
    r, ratios = report["replay"], report["ratios"]
    print(
        f"replay {r['events_per_s']:,} ev/s | read {report['read']['events_per_s']:,} ev/s | "
        f"compute {report['compute']['events_per_s']:,} ev/s | stream "
        f"{report['stream_events_per_s']} ev/s | replay/stream {ratios['replay_over_stream']} | "
        f"replay/compute {ratios['replay_over_compute']} | {report['sharded']['processes']} "
        f"shards/1: {report['sharded']['speedup']}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
