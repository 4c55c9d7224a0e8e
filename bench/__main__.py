"""`make bench` / `make bench-quick`: every benchmark, its results, one chart, the README table.

    .venv/bin/python -m bench            # full: 1M events through the worker, 10k and 100k users
    .venv/bin/python -m bench --quick    # the same benchmarks, small, under 3 minutes
    .venv/bin/python -m bench --only ingest,replay

Each benchmark writes `bench/results/<name>.json` (`-quick` appended in quick runs); the run's
chart is `bench/results/<full|quick>.png` and its table replaces the one in bench/README.md. A
full run (or a rebuild from its results) also regenerates docs/capacity.md (bench/capacity.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench import (
    bench_access,
    bench_freshness,
    bench_ingest,
    bench_memory,
    bench_online,
    bench_replay,
    bench_restart,
    capacity,
    charts,
)
from bench.common import RESULTS, machine, write_result
from bench.report import table, update_readme


@dataclass(frozen=True)
class Profile:
    ingest_events: int
    naive_sample: int
    replay_events: int
    memory_users: list[int]
    memory_worker: bool
    freshness_s: float  # per rate
    freshness_timeout_s: float
    restart_users: int
    restart_memory_users: int


FULL = Profile(1_000_000, 300, 500_000, [1_000, 3_000, 10_000], True, 30.0, 30.0, 100_000, 20_000)
# Quick keeps every benchmark and every rate, smaller: under 3 minutes on the 2-core machine.
QUICK = Profile(12_000, 40, 20_000, [500], False, 4.0, 5.0, 5_000, 1_000)


def benchmarks(
    profile: Profile, quick: bool, reports: dict[str, dict[str, Any]]
) -> dict[str, Callable[[], dict[str, Any]]]:
    def stream_rate() -> float | None:
        ingest = reports.get("ingest")
        return float(ingest["worker"]["events_per_s"]) if ingest else None

    return {
        "ingest": lambda: bench_ingest.run(profile.ingest_events, 3, profile.naive_sample),
        "replay": lambda: bench_replay.run(
            profile.replay_events, 3, stream_rate(), processes=2, rounds=1 if quick else 2
        ),
        "freshness": lambda: bench_freshness.run(
            quick, seconds=profile.freshness_s, timeout_s=profile.freshness_timeout_s
        ),
        "online": lambda: bench_online.run(quick),
        "access": lambda: bench_access.run(quick),
        "memory": lambda: bench_memory.run(
            profile.memory_users, with_worker=profile.memory_worker, days=30
        ),
        "restart": lambda: bench_restart.run(profile.restart_users, profile.restart_memory_users),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under 3 minutes")
    parser.add_argument("--only", default="", help="comma-separated subset of the benchmarks")
    parser.add_argument(
        "--from-results",
        metavar="NOTE",
        help="run nothing: rebuild the chart and README table from bench/results/*.json "
        "(after a run that stopped part way and had its missing parts rerun); NOTE says so",
    )
    args = parser.parse_args()
    profile = QUICK if args.quick else FULL
    suffix = "-quick" if args.quick else ""
    reports: dict[str, dict[str, Any]] = {}
    runs = benchmarks(profile, args.quick, reports)
    chosen = [n for n in args.only.split(",") if n] or list(runs)
    unknown = set(chosen) - set(runs)
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; choose from {list(runs)}")
    began = time.monotonic()
    if args.from_results:
        for name in chosen:
            path = RESULTS / f"{name}{suffix}.json"
            if path.exists():
                reports[name] = json.loads(path.read_text())
    else:
        for name in chosen:
            print(f"== {name} ({time.monotonic() - began:.0f}s into the run)", flush=True)
            reports[name] = runs[name]()
            write_result(f"{name}{suffix}", reports[name])
    seconds = time.monotonic() - began
    kind = "quick" if args.quick else "full"
    m = machine()
    took = f"{seconds:.0f} s"
    if args.from_results:
        took = f"rebuilt from the results: {args.from_results}"
    title = (
        f"`make bench{'-quick' if args.quick else ''}`, {m['when']}, {m['cpus']} CPUs, "
        f"Python {m['python']}, Feast {m['versions']['feast']}, {took}"
    )
    chart = charts.draw(reports, RESULTS / f"{kind}.png", title.replace("`", ""))
    print(f"wrote {chart}")
    update_readme(table(reports, title, f"results/{chart.name}"), kind)
    if kind == "full":  # the plan rests on full-size results only
        print(f"wrote {capacity.write()}")
    print(table(reports, title, f"results/{chart.name}"))
    print(f"all done in {seconds:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
