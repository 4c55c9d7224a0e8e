"""What the benchmarks share: fresh settings per run, workers in subprocesses, counts, results."""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from devstack.proc import children
from stream.catalog import VIEWS
from stream.ops.migrate import load_migrations, migrate
from stream.ops.prefix import IN_PREFIX, prefix_bounds
from stream.settings import Settings, get_settings

RESULTS = Path(__file__).resolve().parent / "results"


def fresh_settings(own_schema: bool = True, **update: Any) -> tuple[Settings, str]:
    """Settings with topics, consumer group, user ids and a migrated Postgres schema of their
    own; and the user-id prefix. `delete_run_leftovers` drops them all.

    A schema of its own, because runs on one stack otherwise pile up in Postgres too: after a
    few days of runs the archive held 27M rows, and an archived row cost Postgres two to three
    times what it costs in a new archive (bench/README.md), so each run measured slower than the
    last. `own_schema=False` writes into the stack's schema, to measure that long-lived archive.
    """
    run = uuid.uuid4().hex[:8]
    schema = {"postgres_schema": f"bench{run}"} if own_schema else {}
    settings = get_settings().model_copy(
        update={
            "topic_prefix": f"bench{run}",
            "worker_app_id": f"bench{run}",
            "worker_sweep_interval_s": 3600.0,
            **schema,
            **update,
        }
    )
    if own_schema:
        create_schema(settings)
    return settings, f"bench{run}-"


def create_schema(settings: Settings) -> None:
    """The settings' Postgres schema, created and migrated as `make migrate` does `public`."""
    conninfo = settings.postgres_conninfo()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(settings.postgres_schema)))
    migrate(conninfo, load_migrations(), schema=settings.postgres_schema)


def drop_schema(settings: Settings) -> None:
    """The run's schema and everything in it; never the stack's own."""
    if settings.postgres_schema == get_settings().postgres_schema:
        return
    with psycopg.connect(settings.postgres_conninfo(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                sql.Identifier(settings.postgres_schema)
            )
        )


def connect(settings: Settings) -> psycopg.Connection[Any]:
    """A connection that reads the run's schema."""
    return psycopg.connect(
        settings.postgres_conninfo(), options=f"-c search_path={settings.postgres_schema}"
    )


def count(settings: Settings, sql: str, args: tuple[Any, ...] = ()) -> int:
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute(sql, args)
        row = cur.fetchone()
    conn.close()
    return int(row[0]) if row else 0


def archived(settings: Settings, prefix: str, since: datetime | None = None) -> int:
    """The run's archived events; `since` (its oldest event time) reads only the partitions of
    its days, not a long history's (bench.bench_growth)."""
    where = IN_PREFIX
    args: tuple[object, ...] = prefix_bounds(prefix)
    if since is not None:
        where, args = f"{where} AND event_timestamp >= %s", (*args, since)
    return count(settings, f"SELECT count(*) FROM raw_events WHERE {where}", args)  # noqa: S608


class ArchiveProgress:
    """Events a run has archived so far, polled without loading Postgres.

    An exact count over the run's user-id range takes time in proportion to the rows already
    archived: polled twice a second through a long run, it became a large share of Postgres's
    CPU (11 s of 60 at 150k events, more at 1M), which the ingest benchmark then charged to the
    pipeline. The table's insert counter costs nothing, but it runs up to a few seconds behind
    and counts every writer's inserts: so the exact count takes over near the target, and while
    the counter does not move, and the counter alone never reports the target reached.
    """

    def __init__(
        self,
        settings: Settings,
        prefix: str,
        target: int,
        since: datetime | None = None,
        exact: bool = True,
    ) -> None:
        """`exact=False` trusts the counter at the target, for a run that retries nothing, on an
        archive whose days hold other rows: there an exact count reads them all (0.84 s of
        Postgres at bench_growth's 50M-row history), which the run's CPU per event would carry.
        """
        self.settings, self.prefix, self.target, self.since = settings, prefix, target, since
        self.exact = exact
        self.base = self._inserted()
        self.seen, self.moved = 0, time.monotonic()

    def _inserted(self) -> int:
        # The archive's rows are in its partitions, which the worker may make as it starts.
        return count(
            self.settings,
            "SELECT coalesce(sum(n_tup_ins), 0) FROM pg_stat_user_tables WHERE relid IN "
            "(SELECT inhrelid FROM pg_inherits WHERE inhparent = to_regclass('raw_events'))",
        )

    def __call__(self) -> int:
        estimate = self._inserted() - self.base
        now = time.monotonic()
        if estimate != self.seen:
            self.seen, self.moved = estimate, now
        if not self.exact:
            return min(estimate, self.target)
        if estimate >= self.target * 0.995 or now - self.moved > 3:
            self.moved = now
            return archived(self.settings, self.prefix, self.since)
        return min(estimate, self.target - 1)


def offline_rows(settings: Settings, prefix: str) -> int:
    union = " UNION ALL ".join(
        f"SELECT count(*) AS n FROM {v.table} WHERE user_id >= %(lo)s AND user_id < %(hi)s"  # noqa: S608 - catalog names
        for v in VIEWS
    )
    lo, hi = prefix_bounds(prefix)
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT sum(n) FROM ({union}) AS t", {"lo": lo, "hi": hi})  # noqa: S608
        row = cur.fetchone()
    conn.close()
    return int(row[0] or 0) if row else 0


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def tree_rss_mib(pid: int) -> float:
    """RSS of a process and its descendants (the worker and its writer process)."""
    return _tree_sum(pid, rss_mib)


def _tree_sum(pid: int, measure: Callable[[int], float]) -> float:
    """`measure` summed over a process and its descendants; those gone meanwhile count 0."""
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            total += measure(current)
            todo.extend(children(current))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int, reaped: bool = True) -> float:
    """CPU seconds (user + system) of a process, and of the children it has waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])  # stat fields 14-17
    return (utime + stime + (cutime + cstime if reaped else 0)) / CLOCK_TICK


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of a process and all its descendants, living or reaped."""
    return _tree_sum(pid, cpu_s)


def service_pids(settings: Settings) -> dict[str, int]:
    """The local stack's service processes (none when the stack runs in Docker), the local
    Redis Cluster's nodes instead of the single Redis where the settings name it."""
    from devstack.__main__ import local_services
    from devstack.redis_cluster import cluster_services

    pids = {}
    nodes = cluster_services(settings) if settings.redis.cluster else []
    for service in [*local_services(settings), *nodes]:
        pid = service.pid()
        if pid is not None:
            pids[service.name] = pid
    return pids


def worker_mains(pid: int) -> list[int]:
    """The processes running a worker's event loop: the worker itself, or, under
    AURORA_WORKER_PROCESSES, the workers its supervisor started."""
    supervised = []
    for child in children(pid):
        try:
            if b"stream\x00worker" in Path(f"/proc/{child}/cmdline").read_bytes():
                supervised.append(child)
        except FileNotFoundError:
            continue
    return supervised or [pid]


# A steady state needs this many events after the first archived one, and this share of the run:
# fewer, and the figure is one flush's worth, dominated by the wait for the last rows.
STEADY_MIN_EVENTS = 50_000
STEADY_MIN_SHARE = 0.5


class CpuMeter:
    """CPU seconds per part of the pipeline between two marks: the worker's main process (or
    processes, with their supervisor), its writer process (or processes), and each local service
    (Postgres with all its backends, Redis, Kafka).

    CPU time, unlike a rate, hardly depends on what else the shared machine runs: CPU per event
    is the figure to compare between runs, and its sum says how many events 2 cores can carry.
    """

    def __init__(self, worker_pid: int, services: dict[str, int]) -> None:
        self.worker_pid, self.services = worker_pid, services
        self.start: tuple[float, int, dict[str, float]] | None = None

    def parts(self) -> dict[str, float]:
        mains = worker_mains(self.worker_pid)
        loops = {*mains, self.worker_pid}
        found = {"worker main": sum(cpu_s(pid, reaped=False) for pid in loops)}
        found["worker writer"] = sum(tree_cpu_s(c) for pid in mains for c in children(pid))
        for name, pid in self.services.items():
            found[name] = tree_cpu_s(pid)
        return found

    def mark(self, events: int) -> None:
        if self.start is None:
            self.start = (time.monotonic(), events, self.parts())

    def per_event(self, events: int) -> dict[str, Any]:
        """Microseconds of CPU per event for each part since the mark, and cores kept busy.

        `measured` is False when too few events came after the mark for a steady state (a
        quick run is over by its first flush or two): its figures are then not reported.
        """
        assert self.start is not None, "mark() first"
        began, events_then, then = self.start
        now = self.parts()
        n = max(1, events - events_then)
        used = {k: now[k] - then.get(k, 0.0) for k in now}
        total = sum(used.values())
        measured = n >= STEADY_MIN_EVENTS and n >= STEADY_MIN_SHARE * events
        return {
            "measured": measured,
            "events": n,
            "seconds": round(time.monotonic() - began, 2),
            "us_per_event": {k: round(v / n * 1e6, 1) for k, v in used.items()},
            "total_us_per_event": round(total / n * 1e6, 1),
            "cores_busy": round(total / max(1e-9, time.monotonic() - began), 2),
        }


def start_worker(settings: Settings, name: str) -> subprocess.Popen[bytes]:
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    log = (workdir / "worker.log").open("wb")
    print(f"  worker {name}: log {workdir / 'worker.log'}", flush=True)
    return subprocess.Popen(
        [sys.executable, "-m", "stream", "worker", "--loglevel", "warn"],
        env={**os.environ, **settings.to_env()},
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=workdir,
        start_new_session=True,
    )


def stop_worker(worker: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    """SIGTERM the process group (a worker, a feature server); SIGKILL it after `timeout_s`."""
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def wait_until(
    done: Callable[[], int],
    target: int,
    timeout_s: float,
    what: str,
    worker: subprocess.Popen[bytes] | None = None,
    every_s: float = 0.5,
) -> float:
    """Poll `done()` until it reaches `target`; print progress; return the seconds it took."""
    began = time.monotonic()
    last_print = began
    while (value := done()) < target:
        now = time.monotonic()
        if worker is not None and worker.poll() is not None:
            raise RuntimeError(
                f"the worker exited ({worker.returncode}) at {value}/{target} {what}"
            )
        if now - began > timeout_s:
            raise TimeoutError(f"{value} of {target} {what} after {timeout_s:.0f}s")
        if now - last_print > 5:
            print(f"  {value:,}/{target:,} {what} after {now - began:.0f}s", flush=True)
            last_print = now
        time.sleep(every_s)
    return time.monotonic() - began


def delete_run_leftovers(settings: Settings, keep_schema: bool = False) -> None:
    """Delete the run's topics (events, dead letters, the app's changelog and internal ones),
    its users' online rows, its Postgres schema (unless kept) and its workers' local stores.

    The online rows matter: runs on one stack otherwise pile up in Redis, and the AOF rewrite
    Redis then forks grows with them (3 s of a core at 316 MB). On two cores shared with the
    worker that stalls the pipeline: one rewrite, started by hand in a freshness run, took the
    p99 from under 1 s to 3.5 s.
    """
    from kafka import KafkaAdminClient

    from stream.redis_client import connect

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        mine = [
            t
            for t in admin.list_topics()
            if t.startswith((settings.topic_prefix, settings.worker_app_id))
        ]
        if mine:
            admin.delete_topics(mine)
    finally:
        admin.close()
    # Feast's key is the serialized entity key, which holds the user id, then the project; the
    # run's user ids start with `<topic_prefix>-` (fresh_settings).
    # On a cluster the scan walks every master, and UNLINK goes to each key's.
    client = connect(settings)
    try:
        pattern = f"*{settings.topic_prefix}-*".encode()
        batch: list[bytes] = []
        for key in client.scan_iter(match=pattern, count=10_000):
            batch.append(key)
            if len(batch) >= 10_000:
                client.unlink(*batch)
                batch = []
        if batch:
            client.unlink(*batch)
    finally:
        client.close()
    if not keep_schema:
        drop_schema(settings)
    shutil.rmtree(settings.worker_state_dir / settings.worker_app_id, ignore_errors=True)


def machine() -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for package in (
        "feast",
        "faust-streaming",
        "aiokafka",
        "kafka-python",
        "redis",
        "psycopg",
        "matplotlib",
    ):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_result(name: str, report: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **report}, indent=2, default=str) + "\n")
    print(f"wrote {path}", flush=True)
    return path
