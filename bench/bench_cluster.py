"""The online store on one Redis against the local 3-master Redis Cluster, side by side.

In one run, on the same machine and stack, each measurement is made on both stores in turn
(single node first, then the cluster, repeated `--rounds` times and the best of each kept, so a
burst of another process's load does not decide the comparison):

- ingest: `bench.bench_ingest` (the worker from its start until every event is archived and
  every row is in Postgres; its online writes go out with each flush), events/s;
- online reads: `bench.bench_online` on energy_prediction_v1, 1 and 100 entity rows, in
  process and over `feast serve`, p50 and p99.

Targets (issue #33): cluster ingest >= 0.8x single node; 1-row online read p99 on the cluster
within 1.5x of single node, in process and over HTTP. On this 2-core machine the three cluster
nodes, the single Redis, Kafka, Postgres, the worker and the client share the cores: a cluster
pays its extra round trips (one per node per pipeline) in CPU here, not across a network.
Results: bench/results/cluster.json (cluster-quick.json with --quick);
docs/decisions/0022-redis-cluster.md.

    .venv/bin/python -m bench.bench_cluster                 # a few minutes
    .venv/bin/python -m bench.bench_cluster --quick         # about two minutes
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from bench import bench_ingest, bench_online
from bench.common import write_result
from devstack.redis_cluster import RedisClusterStack
from stream.settings import get_settings

STORES = ("redis", "redis_cluster")
TARGET_INGEST_RATIO = 0.8  # cluster events/s over single node's, at least
TARGET_P99_RATIO = 1.5  # cluster 1-row p99 over single node's, at most
SERVICE = bench_online.TARGET_SERVICE


def ingest(events: int, rounds: int) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {store: [] for store in STORES}
    for n in range(rounds):
        for store in STORES:
            print(f"ingest, round {n + 1} of {rounds}: {store} ...", flush=True)
            report = bench_ingest.run(events, 3, 0, redis_cluster=store == "redis_cluster")
            runs[store].append(report["worker"] | {"events": report["parameters"]["events"]})
    best = {store: max(r["events_per_s"] for r in runs[store]) for store in STORES}
    return {
        "events_per_s": best,
        "cluster_over_single": round(best["redis_cluster"] / best["redis"], 3),
        "runs": runs,
    }


def online(quick: bool, calls: int | None, rounds: int) -> dict[str, Any]:
    settings = get_settings()
    stores = {"redis": settings, "redis_cluster": settings.on_stack_redis_cluster()}
    runs: dict[str, list[dict[str, Any]]] = {store: [] for store in STORES}
    for n in range(rounds):
        for store, on in stores.items():
            print(f"online reads, round {n + 1} of {rounds}: {store} ...", flush=True)
            report = bench_online.run(quick, calls=calls, settings=on, services=(SERVICE,))
            for case in report["cases"]:
                case.pop("samples_ms", None)
            runs[store].append({"cases": report["cases"], **report["parameters"]})
    # Per case, the round with the lowest p99 of each store.
    cases = []
    for first in runs["redis"][0]["cases"]:
        key = (first["rows"], first["path"])
        row: dict[str, Any] = {"service": SERVICE, "rows": key[0], "path": key[1]}
        for store in STORES:
            mine = [c for r in runs[store] for c in r["cases"] if (c["rows"], c["path"]) == key]
            pick = min(mine, key=lambda c: c["p99_ms"])
            row[store] = {k: pick[k] for k in ("p50_ms", "p99_ms", "requests_per_s")}
        row["p99_cluster_over_single"] = round(
            row["redis_cluster"]["p99_ms"] / row["redis"]["p99_ms"], 3
        )
        cases.append(row)
    return {"cases": cases, "runs": runs}


def run(quick: bool, events: int, calls: int | None, rounds: int) -> dict[str, Any]:
    settings = get_settings()
    cluster = RedisClusterStack(settings.on_stack_redis_cluster())
    print(f"cluster: {cluster.up().detail}", flush=True)
    load_before = os.getloadavg()[0]
    ingested = ingest(events, rounds)
    reads = online(quick, calls, rounds)

    def p99_ratio(path: str) -> float:
        return float(
            next(
                c["p99_cluster_over_single"]
                for c in reads["cases"]
                if c["rows"] == 1 and c["path"] == path
            )
        )

    ports = ",".join(str(p) for p in settings.stack_redis_cluster_ports)
    ratios = {
        "ingest": ingested["cluster_over_single"],
        "p99_1_row_in_process": p99_ratio("in_process"),
        "p99_1_row_http": p99_ratio("http"),
    }
    return {
        "parameters": {
            "quick": quick,
            "events": events,
            "rounds": rounds,
            "cluster": f"3 masters, 127.0.0.1:{ports}",
            "single": f"{settings.redis.host}:{settings.redis.port}",
            "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        },
        "ingest": ingested,
        "online": reads,
        "ratios": ratios,
        "targets": {
            "ingest_ratio_min": TARGET_INGEST_RATIO,
            "p99_ratio_max": TARGET_P99_RATIO,
            "met": {
                "ingest": ratios["ingest"] >= TARGET_INGEST_RATIO,
                "p99_1_row_in_process": ratios["p99_1_row_in_process"] <= TARGET_P99_RATIO,
                "p99_1_row_http": ratios["p99_1_row_http"] <= TARGET_P99_RATIO,
            },
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, about two minutes")
    parser.add_argument("--events", type=int, default=None, help="ingested per run (100,000)")
    parser.add_argument("--calls", type=int, default=None, help="timed calls per 1-row case")
    parser.add_argument("--rounds", type=int, default=None, help="each store measured (2)")
    parser.add_argument("--name", default=None)
    args = parser.parse_args()
    events = args.events or (20_000 if args.quick else 100_000)
    rounds = args.rounds or (1 if args.quick else 2)
    report = run(args.quick, events, args.calls, rounds)
    write_result(args.name or ("cluster-quick" if args.quick else "cluster"), report)
    single, cluster = (report["ingest"]["events_per_s"][s] for s in STORES)
    print(f"\ningest events/s: single {single:,}, cluster {cluster:,}")
    print(
        f"{'rows':>4} {'path':17} {'single p50/p99 ms':>20} {'cluster p50/p99 ms':>20} {'x p99':>6}"
    )
    for c in report["online"]["cases"]:
        one, many = c["redis"], c["redis_cluster"]
        print(
            f"{c['rows']:>4} {c['path']:17} {one['p50_ms']:>9.3f}/{one['p99_ms']:<9.3f} "
            f"{many['p50_ms']:>9.3f}/{many['p99_ms']:<9.3f} {c['p99_cluster_over_single']:>6}"
        )
    met = report["targets"]["met"]
    print(
        f"targets: ingest >= {TARGET_INGEST_RATIO}x {report['ratios']['ingest']} "
        f"{'met' if met['ingest'] else 'MISSED'}; 1-row p99 <= {TARGET_P99_RATIO}x: in process "
        f"{report['ratios']['p99_1_row_in_process']} "
        f"{'met' if met['p99_1_row_in_process'] else 'MISSED'}, HTTP "
        f"{report['ratios']['p99_1_row_http']} {'met' if met['p99_1_row_http'] else 'MISSED'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
