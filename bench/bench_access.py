"""Online reads over HTTP with permissions enforced, beside the same reads without, same run.

One registry (a project of the run's own, applied with feature_repo/permissions.py) and two
`feast serve` processes on it: one with no_auth, one with AURORA_FEAST_AUTH=oidc on the local
stack's OpenID Connect provider (devstack/oidc.py), read with a token of the
`energy_prediction_v1` serving role. Each reads `energy_prediction_v1` (the feature service,
with its on-demand views) and its stored features by reference, 1 row a call, random users;
p50/p99 over a keep-alive session, then requests/s at a fixed concurrency. The two servers take
turns, round after round, so a noisy spell of the shared machine falls on both. The difference
is the cost of a check per request: the token's signature and claims, then the permissions.

    .venv/bin/python -m bench.bench_access            # about two minutes
    .venv/bin/python -m bench.bench_access --quick    # under a minute
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from bench.bench_online import (
    HEADERS,
    Plan,
    Read,
    delete_rows,
    free_port,
    over_http,
    push_rows,
    request_context,
    start_server,
    stored_references,
    summary,
    wait_for_server,
)
from bench.common import stop_worker, write_result
from devstack.oidc import LocalOidc
from stream.featurestore.env import open_store
from stream.settings import Settings, get_settings

SERVICE = "energy_prediction_v1"
ROLE = f"aurora-serving-{SERVICE}"
PATHS = ("open", "enforced")


def apply(settings: Settings) -> None:
    """`feast apply` of the repository, permissions included, into the run's own registry."""
    result = subprocess.run(
        [sys.executable, "-m", "stream", "feast", "apply"],
        env={**os.environ, **settings.to_env()},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"feast apply failed:\n{result.stdout}\n{result.stderr}")


def pooled(samples_ms: list[float], rates: list[float]) -> dict[str, Any]:
    """The rounds' samples as bench_online summarises one round's, with the rounds' rates."""
    found = summary([round(x * 1e6) for x in samples_ms])
    del found["samples_ms"]
    return {
        **found,
        "requests_per_s": round(float(np.mean(rates)), 3),
        "requests_per_s_rounds": rates,
    }


def run(
    quick: bool,
    users: int | None = None,
    calls: int | None = None,
    rounds: int | None = None,
    concurrency: int = 8,
) -> dict[str, Any]:
    plan = Plan(
        users=users or 1_000,
        calls=calls or (100 if quick else 1_000),
        warmup=10 if quick else 50,
        concurrency=concurrency,
        throughput_s=1.0 if quick else 3.0,
    )
    rounds = rounds or (1 if quick else 3)
    base = get_settings()
    run_id = uuid.uuid4().hex[:8]
    folder = Path(tempfile.mkdtemp(prefix="bench-access-"))
    settings = base.model_copy(
        update={
            "feast_project": f"benchaccess{run_id}",
            "feast_registry_path": str(folder / "registry.db"),
        }
    )
    print(f"feast apply into {folder} ...", flush=True)
    apply(settings)
    oidc = LocalOidc(base).up()
    token = oidc.token(oidc.register([ROLE], token_ttl_s=3600))
    headers = {"open": HEADERS, "enforced": {**HEADERS, "Authorization": f"Bearer {token}"}}
    served = {"open": settings, "enforced": oidc.feature_server_settings(settings)}
    rng = random.Random(run_id)  # noqa: S311 (benchmark data, reproducible from the run id)
    user_ids = [f"benchaccess{run_id}-{i:05d}" for i in range(plan.users)]
    load_before = os.getloadavg()
    store = open_store(settings)
    servers: dict[str, Any] = {}
    try:
        print(f"pushing online rows for {plan.users:,} users ...", flush=True)
        push_rows(store, user_ids, rng)
        service = store.get_feature_service(SERVICE)
        reads = {
            "service": Read(SERVICE, service, request_context(store, service)),
            "plain": Read(SERVICE, stored_references(store, service), {}),
        }
        urls = {}
        for path in PATHS:
            port = free_port()
            servers[path], log = start_server(served[path], port)
            wait_for_server(servers[path], port, log, timeout_s=90)
            urls[path] = f"http://127.0.0.1:{port}/get-online-features"
            print(f"feast serve, {path}, on :{port} (log {log})", flush=True)
        samples: dict[tuple[str, str], list[float]] = {}
        rates: dict[tuple[str, str], list[float]] = {}
        for turn in range(rounds):
            for path in PATHS if turn % 2 == 0 else tuple(reversed(PATHS)):
                for kind, read in reads.items():
                    result = over_http(urls[path], read, user_ids, 1, plan, rng, headers[path])
                    samples.setdefault((path, kind), []).extend(result["samples_ms"])
                    rates.setdefault((path, kind), []).append(result["requests_per_s"])
                    print(
                        f"  round {turn + 1} {path:8} {kind:7} p50 {result['p50_ms']:7.3f} "
                        f"p99 {result['p99_ms']:7.3f} ms {result['requests_per_s']:8.1f} req/s",
                        flush=True,
                    )
    finally:
        for server in servers.values():
            stop_worker(server, timeout_s=20)
        removed = delete_rows(settings, store, user_ids)
        print(f"removed {removed:,} online rows", flush=True)
    cases = [
        {"path": path, "read": kind, "rows": 1, **pooled(samples[path, kind], rates[path, kind])}
        for path in PATHS
        for kind in reads
    ]
    by = {(c["path"], c["read"]): c for c in cases}
    return {
        "parameters": {
            "quick": quick,
            "users": plan.users,
            "calls_per_round": plan.calls,
            "warmup": plan.warmup,
            "rounds": rounds,
            "concurrency": plan.concurrency,
            "throughput_s": plan.throughput_s,
            "service": SERVICE,
            "role": ROLE,
            "online_store": "redis_cluster" if settings.redis.cluster else "redis",
            "load_average_1m": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        },
        "cases": cases,
        "ratios": {
            kind: {
                "p50": round(by["enforced", kind]["p50_ms"] / by["open", kind]["p50_ms"], 3),
                "p99": round(by["enforced", kind]["p99_ms"] / by["open", kind]["p99_ms"], 3),
                "requests_per_s": round(
                    by["enforced", kind]["requests_per_s"] / by["open", kind]["requests_per_s"], 3
                ),
                "added_p50_ms": round(
                    by["enforced", kind]["p50_ms"] - by["open", kind]["p50_ms"], 3
                ),
            }
            for kind in reads
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls, under a minute")
    parser.add_argument("--users", type=int, default=None, help="users with online rows (1,000)")
    parser.add_argument("--calls", type=int, default=None, help="timed calls per case and round")
    parser.add_argument("--rounds", type=int, default=None, help="turns of each server (3)")
    parser.add_argument("--name", default=None)
    args = parser.parse_args()
    report = run(args.quick, args.users, args.calls, args.rounds)
    write_result(args.name or ("access-quick" if args.quick else "access"), report)
    for c in report["cases"]:
        print(
            f"{c['path']:8} {c['read']:7} p50 {c['p50_ms']:7.3f} p99 {c['p99_ms']:7.3f} ms "
            f"{c['requests_per_s']:8.1f} req/s"
        )
    for kind, ratio in report["ratios"].items():
        print(f"enforced / open, {kind}: {ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
