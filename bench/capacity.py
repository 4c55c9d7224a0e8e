"""docs/capacity.md, generated: a capacity plan for 100k, 1M and 10M users from measured costs.

    .venv/bin/python -m bench.capacity          # also run by `python -m bench` (full runs)

Invariant: every figure in the page is arithmetic over bench/results/*.json, and names the
result and the per-event or per-user cost it comes from; where it extrapolates (linearly, in
users or in shards), it says so and shows the measured points. A result that is missing makes
its rows say "not measured", never a typed-in number.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from bench.common import RESULTS
from bench.report import own_runs

PAGE: Final = Path(__file__).resolve().parents[1] / "docs" / "capacity.md"
USERS: Final = (100_000, 1_000_000, 10_000_000)
EVENTS_PER_USER_DAY: Final = 50
# Assumptions, not measurements: stated on the page wherever they are used.
PEAK_OVER_AVERAGE: Final = 4.0  # traffic peaks at 4x the day's average rate
HEADROOM: Final = 0.5  # a worker is planned at half of the rate it sustains
BACKFILL_DAYS: Final = 30
SHARDS: Final = (1, 8, 32)

Results = dict[str, dict[str, Any]]


def load(names: tuple[str, ...] = ("ingest", "replay", "restart", "restart-1m")) -> Results:
    found = {}
    for name in names:
        path = RESULTS / f"{name}.json"
        if path.exists():
            found[name] = json.loads(path.read_text())
    return found


def _n(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def _bytes(value: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if value >= size:
            return f"{value / size:,.1f} {unit}"
    return f"{value:,.0f} B"


def _hours(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:,.1f} h"
    return f"{seconds / 60:,.0f} min"


def _source(results: Results, name: str) -> str:
    when = results[name].get("machine", {}).get("when", "?")
    load = results[name].get("load_average")
    shared = f", load average {load['before'][0]} at its start" if load else ""
    return f"`bench/results/{name}.json` ({when}{shared})"


def _missing(what: str, name: str) -> list[str]:
    return [f"{what}: not measured (no `bench/results/{name}.json`; run its benchmark)", ""]


def average_eps(users: int) -> float:
    return users * EVENTS_PER_USER_DAY / 86_400


def workers_section(results: Results) -> list[str]:
    if "ingest" not in results:
        return _missing("Workers", "ingest")
    w = results["ingest"]["worker"]
    steady = float(w.get("steady_events_per_s") or w["events_per_s"])
    cpu = w.get("cpu") or {}
    lines = [
        "## Workers and partitions",
        "",
        f"One worker sustains {_n(steady)} events/s (steady state, {_source(results, 'ingest')};"
        f" {cpu.get('total_us_per_event', '?')} us of CPU an event, {cpu.get('cores_busy', '?')}"
        f" cores busy). Planned at {HEADROOM:.0%} of that ({_n(steady * HEADROOM)} events/s a"
        f" worker) for a peak of {PEAK_OVER_AVERAGE:g}x the day's average (an assumption, not a"
        " measurement). Workers scale out linearly by partitions (one consumer group,"
        " [decision 0014](decisions/0014-several-worker-processes.md)); linear is the assumption"
        " here. Partitions per topic: at least twice the workers, so the group can double"
        " without repartitioning, and never fewer than the default 4.",
        "",
        "| users | average events/s | peak events/s | workers | partitions per topic | worker"
        " CPU at peak |",
        "|---|---|---|---|---|---|",
    ]
    for users in USERS:
        avg = average_eps(users)
        peak = avg * PEAK_OVER_AVERAGE
        workers = max(1, math.ceil(peak / (steady * HEADROOM)))
        partitions = max(4, 2 ** math.ceil(math.log2(2 * workers)))
        cores = peak * float(cpu.get("total_us_per_event", 0)) / 1e6
        lines.append(
            f"| {_n(users)} | {_n(avg)} | {_n(peak)} | {workers} | {partitions} | "
            f"{_n(cores, 2)} cores |"
        )
    return [*lines, ""]


def linear(points: list[tuple[float, float]]) -> Callable[[float], float]:
    """The line through the first and last measured points (x, y)."""
    (x0, y0), (x1, y1) = points[0], points[-1]
    slope = (y1 - y0) / (x1 - x0) if x1 != x0 else 0.0
    return lambda x: y0 + slope * (x - x0)


def restart_section(results: Results) -> list[str]:
    runs = [results[n] for n in ("restart", "restart-1m") if n in results]
    if not runs:
        return _missing("Restart", "restart")
    points = sorted(
        (float(r["parameters"]["users"]), float(r["aurora"]["after_sigkill"]["served_s"]))
        for r in runs
    )
    store = sorted(
        (float(r["parameters"]["users"]), float(r["aurora"]["store_bytes"])) for r in runs
    )
    at = linear(points)
    per_user_store = store[-1][1] / store[-1][0]
    steady = float(results.get("ingest", {}).get("worker", {}).get("steady_events_per_s") or 0)
    named = ", ".join(_source(results, n) for n in ("restart", "restart-1m") if n in results)
    measured = "; ".join(f"{_n(u)} users: {s} s" for u, s in points)
    lines = [
        "## Restart and local state",
        "",
        f"A worker killed with SIGKILL serves again after reading its local store and the"
        f" changelog's tail. Measured with one worker holding every user ({named}): {measured}."
        f" Per worker, the time is taken on the line through those points, in the users a worker"
        f" holds (linear: an assumption beyond {_n(points[-1][0])} users). The local state store"
        f" takes {_n(per_user_store)} bytes a user on disk ({_n(store[-1][1] / 1e9, 1)} GB at"
        f" {_n(store[-1][0])} users; {_n(store[0][1] / store[0][0])} bytes a user at"
        f" {_n(store[0][0])}).",
        "",
        "| users | users per worker | restart after SIGKILL | state store, all workers |",
        "|---|---|---|---|",
    ]
    for users in USERS:
        workers = 1
        if steady:
            peak = average_eps(users) * PEAK_OVER_AVERAGE
            workers = max(1, math.ceil(peak / (steady * HEADROOM)))
        per_worker = users / workers
        lines.append(
            f"| {_n(users)} | {_n(per_worker)} | {at(per_worker):.1f} s | "
            f"{_bytes(users * per_user_store)} |"
        )
    return [*lines, ""]


def redis_section(results: Results) -> list[str]:
    redis = results.get("replay", {}).get("redis")
    if not redis:
        return _missing("Redis memory", "replay")
    per_user = float(redis["bytes_per_user"])
    lines = [
        "## Redis memory",
        "",
        f"Each user's online rows, as the writer writes them, took {_n(per_user)} bytes of Redis"
        f" (`MEMORY USAGE` of each key, {_n(redis['users'])} users with"
        f" {_n(redis['rows'])} rows in {_n(redis['keys'])} keys; {_source(results, 'replay')},"
        " `redis`). Linear in users (one key a user): an assumption from one measured point. Not"
        " included: Redis's own overhead and fragmentation, and an AOF rewrite's fork (plan"
        " twice the figure for the server).",
        "",
        "| users | Redis, online rows |",
        "|---|---|",
    ]
    lines += [f"| {_n(u)} | {_bytes(u * per_user)} |" for u in USERS]
    return [*lines, ""]


def postgres_section(results: Results) -> list[str]:
    storage = results.get("replay", {}).get("storage")
    if not storage:
        return _missing("Postgres growth", "replay")
    archive = storage["archive_bytes"] / storage["archived_rows"]
    snapshot = storage["snapshot_bytes"] / storage["snapshot_rows"]
    lines = [
        "## Postgres growth",
        "",
        f"Every valid event is one archived row ({_n(archive)} bytes with its indexes and TOAST)"
        f" and one feature snapshot row ({_n(snapshot)} bytes); measured on tables of"
        f" {_n(storage['archived_rows'])} and {_n(storage['snapshot_rows'])} fresh rows"
        f" ({_source(results, 'replay')}, `storage`, `pg_total_relation_size`). Linear in events"
        " (an assumption: a larger index costs a little more a row), in the day-partitioned"
        " tables of migration 0008; the growth benchmark measures a full day's writes at"
        " 50M rows ([bench/README.md](../bench/README.md)).",
        "",
        "| users | events a day | archive a day | snapshots a day | total a day | 30 days |",
        "|---|---|---|---|---|---|",
    ]
    for users in USERS:
        events = users * EVENTS_PER_USER_DAY
        day = events * (archive + snapshot)
        lines.append(
            f"| {_n(users)} | {_n(events)} | {_bytes(events * archive)} | "
            f"{_bytes(events * snapshot)} | {_bytes(day)} | {_bytes(day * 30)} |"
        )
    return [*lines, ""]


def backfill_section(results: Results) -> list[str]:
    replay = results.get("replay", {})
    sharded = replay.get("sharded")
    if not sharded:
        return _missing("Backfill", "replay")
    one = float(sharded["one_events_per_s"])
    compute = float(replay["compute"]["events_per_s"])
    runs = own_runs(sharded)

    def mean(n: int, key: str) -> float:
        chosen = [r for r in runs if r["processes"] == n]
        return sum(float(r["us_per_event"].get(key, 0)) for r in chosen) / len(chosen)

    pg_us = mean(1, "postgres")
    one_runs = [r for r in runs if r["processes"] == 1]
    # Everything the command's processes used (start-up and the registry check included).
    shard_us = sum(r["replay_processes_cpu_s"] / r["events"] * 1e6 for r in one_runs) / len(
        one_runs
    )
    many = sharded["processes"]
    lines = [
        "## A 30-day backfill",
        "",
        f"`make replay` over {BACKFILL_DAYS} days reads {BACKFILL_DAYS} days before the range"
        f" too, so that the windows start full: those events are aggregated (at the"
        f" compute-only rate, {_n(compute)} events/s) but write nothing. One shard replays"
        f" {_n(one)} events/s ({_source(results, 'replay')}, `sharded`, 1 process, start-up"
        f" included; {_n(shard_us, 1)} us of CPU an event in its processes: the replay and its"
        f" writer; {_n(pg_us, 1)} us in the Postgres backends serving it)."
        " Measured points of the split on one 2-core machine:"
        f" 1 process {_n(one)} events/s, {many} processes {_n(sharded['many_events_per_s'])}"
        f" events/s ({sharded['speedup']}x). For 8 and 32 shards the time is divided by the"
        " shards (linear: an assumption), each shard with the cores it used here (its process"
        " and its writer), and Postgres with the cores the table names: its CPU an event times"
        " the shards' rate.",
        "",
        "| users | events in the range | "
        + " | ".join(f"{n} shard{'s' if n > 1 else ''} (Postgres cores)" for n in SHARDS)
        + " |",
        "|---|---|" + "---|" * len(SHARDS),
    ]
    for users in USERS:
        events = users * EVENTS_PER_USER_DAY * BACKFILL_DAYS
        single = events / one + events / compute
        cells = []
        for n in SHARDS:
            pg_cores = n * one * pg_us / 1e6
            cells.append(f"{_hours(single / n)} ({_n(pg_cores, 1)})")
        lines.append(f"| {_n(users)} | {_n(events)} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def page(results: Results) -> str:
    names = ", ".join(f"`{n}`" for n in sorted(results)) or "none"
    parts = [
        "# Capacity plan",
        "",
        "<!-- Generated by `python -m bench.capacity` from bench/results/*.json: do not edit. -->",
        "",
        f"For 100k, 1M and 10M users at {EVENTS_PER_USER_DAY} events a user a day, from the"
        f" costs the benchmarks measured ([bench/README.md](../bench/README.md)); results read:"
        f" {names}. Each figure names the result and the per-event or per-user cost it comes"
        " from. The benchmarks ran on one shared 2-core machine: costs per event and per user"
        " carry over to other machines better than rates do.",
        "",
        *workers_section(results),
        *redis_section(results),
        *postgres_section(results),
        *restart_section(results),
        *backfill_section(results),
    ]
    return "\n".join(parts).rstrip("\n") + "\n"


def write(results: Results | None = None, path: Path = PAGE) -> Path:
    path.write_text(page(load() if results is None else results))
    return path


def main() -> int:
    print(f"wrote {write()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
