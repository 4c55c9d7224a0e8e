"""Online reads per feature service, in-process and over `feast serve`, beside plain Feast reads.

N users get a row in every feature view, pushed online through Feast's push sources. Then, for
each feature service and for 1 and 100 entity rows a call, random users every call:

- in_process: `store.get_online_features(features=<the FeatureService>, ...).to_dict()`, the
  service resolved once beforehand, as an application holding it would;
- in_process_plain: the same service's stored features by explicit references ("view:field"), no
  on-demand views: what a plain Feast read of the same features costs;
- http, http_plain: the same two reads as POST /get-online-features to `feast serve` (one
  worker), sequential latency over a keep-alive session, then requests/s at a fixed concurrency.

Target: energy_prediction_v1, 1 row: in-process p99 <= 3 ms, HTTP p99 <= 10 ms. The rows are
deleted from Redis at the end.

    .venv/bin/python -m bench.bench_online            # a few minutes
    .venv/bin/python -m bench.bench_online --quick    # under a minute
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd
import requests

from bench.common import stop_worker, write_result
from stream.catalog import VIEWS, FeatureSpec, features_of
from stream.featurestore.env import open_store
from stream.redis_client import connect
from stream.settings import Settings, get_settings

if TYPE_CHECKING:
    from feast import FeatureService, FeatureStore

SERVICES = ("energy_prediction_v1", "mood_prediction_v1", "wellness_dashboard_v1", "ml_training_v1")
ROW_COUNTS = (1, 100)
TARGET_SERVICE = "energy_prediction_v1"
TARGET_IN_PROCESS_P99_MS = 3.0
TARGET_HTTP_P99_MS = 10.0
ACTIVITY_TYPES = ("walking", "work", "reading", "meditation", "cooking", "chores", "music")

# Value ranges by catalog unit, so the on-demand formulas see in-range inputs and take the same
# branches they take in production (an out-of-range input counts as missing there).
RANGES: dict[str, tuple[float, float]] = {
    "0-1": (0.0, 1.0),
    "1-10": (1.0, 10.0),
    "minutes": (20.0, 540.0),
    "hour": (0.0, 23.9),
    "hours": (0.0, 48.0),
    "bpm": (52.0, 95.0),
    "steps": (2_000.0, 16_000.0),
    "kcal": (80.0, 900.0),
    "likes": (0.0, 25.0),
    "per day": (0.0, 4.0),
}


@dataclass(frozen=True)
class Plan:
    users: int
    calls: int  # timed calls of a 1-row case; a 100-row case, some 40x slower, makes a tenth
    warmup: int
    concurrency: int
    throughput_s: float

    def calls_for(self, rows: int) -> int:
        return self.calls if rows == 1 else max(10, self.calls // 10)

    def warmup_for(self, rows: int) -> int:
        return self.warmup if rows == 1 else max(3, self.warmup // 10)


def value_for(spec: FeatureSpec, rng: random.Random) -> Any:
    if spec.dtype == "string":
        return rng.choice(ACTIVITY_TYPES)
    if spec.dtype == "int64":
        return rng.randint(1, 40)
    low, high = RANGES.get(spec.unit, (0.0, 100.0))
    return round(rng.uniform(low, high), 4)


def push_rows(store: FeatureStore, users: list[str], rng: random.Random) -> None:
    """One online row per user in every view, through the push sources the worker uses."""
    from feast.data_source import PushMode

    now = datetime.now(UTC)
    for spec in VIEWS:
        features = features_of(spec.name)
        columns: dict[str, list[Any]] = {
            "user_id": users,
            # Minutes old at most: well inside the shortest TTL (6 h), so no read hits expiry.
            "event_timestamp": [now - timedelta(seconds=rng.uniform(0, 600)) for _ in users],
        }
        for feature in features:
            columns[feature.name] = [value_for(feature, rng) for _ in users]
        store.push(spec.push_source, pd.DataFrame(columns), to=PushMode.ONLINE)


def delete_rows(settings: Settings, store: FeatureStore, users: list[str]) -> int:
    """Remove the users' online rows: one Redis hash per entity key holds every view's fields."""
    from feast.infra.online_stores.helpers import _redis_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    version = store.config.entity_key_serialization_version
    keys = [
        _redis_key(
            store.project,
            EntityKey(join_keys=["user_id"], entity_values=[Value(string_val=user)]),
            version,
        )
        for user in users
    ]
    client = connect(settings)
    try:
        removed = 0
        for i in range(0, len(keys), 500):
            # On a cluster redis-py splits a DEL by hash slot.
            removed += cast(int, client.delete(*keys[i : i + 500]))
        return removed
    finally:
        client.close()


def request_context(store: FeatureStore, service: FeatureService) -> dict[str, int]:
    """The request-source values the service's on-demand views need, as the app would send."""
    now = datetime.now()
    known = {
        "current_hour": now.hour,
        "day_of_week": now.weekday(),
        "is_weekend": int(now.weekday() >= 5),
    }
    on_demand = {v.name for v in store.list_on_demand_feature_views()}
    needed: dict[str, int] = {}
    for projection in service.feature_view_projections:
        if projection.name not in on_demand:
            continue
        odfv = store.get_on_demand_feature_view(projection.name)
        for source in odfv.source_request_sources.values():
            for field in source.schema:
                needed[field.name] = known[field.name]
    return needed


def stored_references(store: FeatureStore, service: FeatureService) -> list[str]:
    """The service's feature-view fields as "view:field", its on-demand views left out."""
    views = {v.name for v in store.list_feature_views()}
    return [
        f"{p.name_alias or p.name}:{f.name}"
        for p in service.feature_view_projections
        if p.name in views
        for f in p.features
    ]


def summary(samples_ns: list[int]) -> dict[str, Any]:
    ms = np.array(samples_ns, dtype=float) / 1e6
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p95_ms": round(float(np.percentile(ms, 95)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "mean_ms": round(float(ms.mean()), 3),
        "calls": len(samples_ns),
        "samples_ms": [round(float(x), 3) for x in ms],
    }


def time_calls(call: Callable[[int], object], calls: int, warmup: int) -> list[int]:
    """Nanoseconds of each timed call; the warm-up fills Feast's caches and the connections."""
    for i in range(warmup):
        call(i)
    samples = []
    for i in range(calls):
        began = time.perf_counter_ns()
        call(warmup + i)
        samples.append(time.perf_counter_ns() - began)
    return samples


def check_dict(result: dict[str, list[Any]], rows: int, what: str) -> None:
    empty = [name for name, values in result.items() if len(values) != rows or None in values]
    if empty:
        raise AssertionError(f"{what}: null or missing values in {empty}")


def check_http(body: dict[str, Any], rows: int, what: str) -> None:
    names = body["metadata"]["feature_names"]
    for name, column in zip(names, body["results"], strict=True):
        if len(column["values"]) != rows or None in column["values"]:
            raise AssertionError(f"{what}: null or missing values in {name}")
        if any(s != "PRESENT" for s in column["statuses"]):
            raise AssertionError(f"{what}: {name} statuses {set(column['statuses'])}")


# --- the reads -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Read:
    """One service's read in both forms: its entity rows and the HTTP bodies they become."""

    service: str
    features: FeatureService | list[str]
    context: dict[str, int]

    def rows(self, users: list[str]) -> list[dict[str, Any]]:
        return [{"user_id": user, **self.context} for user in users]

    def body(self, users: list[str]) -> bytes:
        entities: dict[str, list[Any]] = {"user_id": users}
        for name, value in self.context.items():
            entities[name] = [value] * len(users)
        if isinstance(self.features, list):
            return json.dumps({"features": self.features, "entities": entities}).encode()
        return json.dumps({"feature_service": self.service, "entities": entities}).encode()


def reads_of(store: FeatureStore, services: tuple[str, ...]) -> list[tuple[Read, Read]]:
    """(service read, plain read) per service."""
    pairs = []
    for name in services:
        service = store.get_feature_service(name)
        plain = Read(name, stored_references(store, service), {})
        pairs.append((Read(name, service, request_context(store, service)), plain))
    return pairs


def draws(users: list[str], rows: int, count: int, rng: random.Random) -> list[list[str]]:
    """Random users per call, drawn before timing so the draw is not measured."""
    return [rng.sample(users, rows) for _ in range(count)]


def in_process(
    store: FeatureStore, read: Read, users: list[str], rows: int, plan: Plan, rng: random.Random
) -> dict[str, Any]:
    calls, warmup = plan.calls_for(rows), plan.warmup_for(rows)
    entity_rows = [read.rows(u) for u in draws(users, rows, calls + warmup, rng)]
    check_dict(
        store.get_online_features(features=read.features, entity_rows=entity_rows[0]).to_dict(),
        rows,
        f"{read.service} in process",
    )

    def call(i: int) -> object:
        return store.get_online_features(
            features=read.features, entity_rows=entity_rows[i % len(entity_rows)]
        ).to_dict()

    return summary(time_calls(call, calls, warmup))


HEADERS = {"Content-Type": "application/json"}


def over_http(
    url: str,
    read: Read,
    users: list[str],
    rows: int,
    plan: Plan,
    rng: random.Random,
    headers: dict[str, str] = HEADERS,
) -> dict[str, Any]:
    """`headers` carry the bearer token where the server enforces permissions."""
    calls, warmup = plan.calls_for(rows), plan.warmup_for(rows)
    bodies = [read.body(u) for u in draws(users, rows, calls + warmup, rng)]
    session = requests.Session()
    first = session.post(url, data=bodies[0], headers=headers, timeout=30)
    if first.status_code != 200:
        raise AssertionError(f"{read.service} over HTTP: {first.status_code} {first.text[:500]}")
    check_http(first.json(), rows, f"{read.service} over HTTP")

    def call(i: int) -> object:
        response = session.post(url, data=bodies[i % len(bodies)], headers=headers, timeout=30)
        if response.status_code != 200:
            raise AssertionError(f"{read.service}: {response.status_code} {response.text[:500]}")
        return response.json()

    result = summary(time_calls(call, calls, warmup))
    session.close()
    result["requests_per_s"] = throughput(url, bodies, plan, headers)
    return result


def throughput(
    url: str, bodies: list[bytes], plan: Plan, headers: dict[str, str] = HEADERS
) -> float:
    """Requests/s with `concurrency` threads, each on its own keep-alive session."""
    done = [0] * plan.concurrency
    failures: list[str] = []
    start = threading.Barrier(plan.concurrency + 1)
    stop = threading.Event()

    def client(slot: int) -> None:
        session = requests.Session()
        i = slot
        start.wait()
        try:
            while not stop.is_set():
                body = bodies[i % len(bodies)]
                response = session.post(url, data=body, headers=headers, timeout=30)
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:300]}")
                    return
                done[slot] += 1
                i += plan.concurrency
        except requests.RequestException as exc:
            failures.append(repr(exc))
        finally:
            session.close()

    threads = [threading.Thread(target=client, args=(s,)) for s in range(plan.concurrency)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    time.sleep(plan.throughput_s)
    stop.set()
    for thread in threads:
        thread.join()
    # Requests in flight when the clock stops finish after it; counting them over the time they
    # took keeps the rate honest when a request is long beside the window.
    elapsed = time.perf_counter() - began
    if failures:
        raise AssertionError(f"requests failed under load: {failures[0]}")
    return round(sum(done) / elapsed, 3)


# --- the feature server --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


SERVE_OPTIONS = (
    "--workers",
    "1",
    "--no-access-log",
    # Gunicorn would recycle the worker every ~1,000 requests by default: a restart inside a
    # timed loop measures start-up, not reads.
    "--max-requests",
    "0",
)


def start_server(settings: Settings, port: int) -> tuple[subprocess.Popen[bytes], Path]:
    log_path = Path(tempfile.mkdtemp(prefix="bench-online-")) / "feast-serve.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stream",
                "feast",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                *SERVE_OPTIONS,
            ],
            # Gunicorn's control socket goes to $XDG_RUNTIME_DIR, else ~/.gunicorn, where a
            # second server (another benchmark's) would collide with this one.
            env={**os.environ, **settings.to_env(), "XDG_RUNTIME_DIR": str(log_path.parent)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return server, log_path


def wait_for_server(
    server: subprocess.Popen[bytes], port: int, log: Path, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"feast serve exited ({server.returncode}):\n{tail}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"feast serve did not answer within {timeout_s:.0f}s (log {log})")


# --- the run -------------------------------------------------------------------------------------


def case(service: str, rows: int, path: str, result: dict[str, Any]) -> dict[str, Any]:
    samples = result.pop("samples_ms")
    return {
        "service": service,
        "rows": rows,
        "path": path,
        **result,
        "requests_per_s": result.get("requests_per_s"),
        "samples_ms": samples,
    }


def progress(result: dict[str, Any], service: str, rows: int, path: str) -> None:
    rate = result.get("requests_per_s")
    print(
        f"  {service:22} {rows:>3} {path:17} p50 {result['p50_ms']:8.3f} "
        f"p99 {result['p99_ms']:8.3f} ms" + (f" {rate:9.1f} req/s" if rate is not None else ""),
        flush=True,
    )


def measure(
    path: str,
    measure_one: Callable[[Read, int], dict[str, Any]],
    pairs: list[tuple[Read, Read]],
) -> list[dict[str, Any]]:
    """Each service and row count, through `path` and beside its plain read (`path`_plain)."""
    cases = []
    for read, plain in pairs:
        for rows in ROW_COUNTS:
            for name, one in ((path, read), (f"{path}_plain", plain)):
                result = measure_one(one, rows)
                progress(result, read.service, rows, name)
                cases.append(case(read.service, rows, name, result))
    return cases


def run(
    quick: bool,
    users: int | None = None,
    calls: int | None = None,
    concurrency: int = 8,
    settings: Settings | None = None,
    services: tuple[str, ...] = SERVICES,
) -> dict[str, Any]:
    """`settings` chooses the online store (the process's by default); `services` which
    feature services are read (TARGET_SERVICE must be among them)."""
    plan = Plan(
        users=users or 1_000,
        calls=calls or (40 if quick else 1_000),
        warmup=5 if quick else 30,
        concurrency=concurrency,
        throughput_s=0.5 if quick else 3.0,
    )
    settings = settings or get_settings()
    prefix = f"benchonline{uuid.uuid4().hex[:8]}-"
    load_before = os.getloadavg()
    rng = random.Random(prefix)  # noqa: S311 (benchmark data, reproducible from the prefix)
    user_ids = [f"{prefix}{i:05d}" for i in range(plan.users)]
    store = open_store(settings)
    try:
        print(f"pushing online rows for {plan.users:,} users ({prefix}*) ...", flush=True)
        push_rows(store, user_ids, rng)
        pairs = reads_of(store, services)
        cases = measure(
            "in_process",
            lambda read, rows: in_process(store, read, user_ids, rows, plan, rng),
            pairs,
        )
        # Started only now: booting, it would take CPU from the in-process cases.
        port = free_port()
        server, log = start_server(settings, port)
        try:
            print(f"feast serve on :{port} (log {log}) ...", flush=True)
            wait_for_server(server, port, log, timeout_s=90)
            url = f"http://127.0.0.1:{port}/get-online-features"
            cases += measure(
                "http", lambda read, rows: over_http(url, read, user_ids, rows, plan, rng), pairs
            )
        finally:
            stop_worker(server, timeout_s=20)
    finally:
        removed = delete_rows(settings, store, user_ids)
        print(f"removed {removed:,} online rows", flush=True)

    def p99(path: str) -> float:
        return float(
            next(
                c["p99_ms"]
                for c in cases
                if c["service"] == TARGET_SERVICE and c["rows"] == 1 and c["path"] == path
            )
        )

    return {
        "parameters": {
            "quick": quick,
            "users": plan.users,
            "calls_1_row": plan.calls_for(1),
            "calls_100_rows": plan.calls_for(100),
            "warmup_1_row": plan.warmup_for(1),
            "warmup_100_rows": plan.warmup_for(100),
            "concurrency": plan.concurrency,
            "throughput_s": plan.throughput_s,
            "services": list(services),
            "online_store": "redis_cluster" if settings.redis.cluster else "redis",
            "feast_serve": " ".join(SERVE_OPTIONS),
            "registry_type": settings.feast_registry_type,
            # The machine is shared: a load above its core count means the figures are inflated.
            "load_average_1m": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        },
        "cases": cases,
        "targets": {
            "energy_in_process_p99_ms": TARGET_IN_PROCESS_P99_MS,
            "energy_http_p99_ms": TARGET_HTTP_P99_MS,
            "met": {
                "energy_in_process_p99_ms": p99("in_process") <= TARGET_IN_PROCESS_P99_MS,
                "energy_http_p99_ms": p99("http") <= TARGET_HTTP_P99_MS,
            },
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls, under a minute")
    parser.add_argument("--users", type=int, default=None, help="users with online rows (1,000)")
    parser.add_argument("--calls", type=int, default=None, help="timed calls per 1-row case")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads for req/s")
    parser.add_argument("--name", default="online")
    args = parser.parse_args()
    report = run(args.quick, args.users, args.calls, args.concurrency)
    write_result(args.name, report)
    print(f"{'service':22} {'rows':>4} {'path':17} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>9}")
    for c in report["cases"]:
        rate = f"{c['requests_per_s']:9.1f}" if c["requests_per_s"] is not None else f"{'-':>9}"
        print(
            f"{c['service']:22} {c['rows']:>4} {c['path']:17} {c['p50_ms']:8.3f} "
            f"{c['p99_ms']:8.3f} {rate}"
        )
    targets = report["targets"]
    print(
        f"targets ({TARGET_SERVICE}, 1 row): in-process p99 <= {TARGET_IN_PROCESS_P99_MS} ms "
        f"{'met' if targets['met']['energy_in_process_p99_ms'] else 'MISSED'}, "
        f"HTTP p99 <= {TARGET_HTTP_P99_MS} ms "
        f"{'met' if targets['met']['energy_http_p99_ms'] else 'MISSED'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
