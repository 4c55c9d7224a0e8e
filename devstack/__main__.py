"""`python -m devstack up|down|status|clean`: the real single-node stack behind `make up`,
and beside it, when asked for: the local Redis Cluster (AURORA_STACK_REDIS_CLUSTER, `make up
REDIS_CLUSTER=1`, or an AURORA_REDIS_URL naming a cluster), the encrypted Postgres and Redis
(AURORA_STACK_TLS, `make up TLS=1`) and the OpenID Connect provider (AURORA_STACK_OIDC, `make up
OIDC=1`). `down` stops whichever of them runs."""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from functools import partial

from devstack import compose
from devstack.errors import StackError
from devstack.kafka import Kafka
from devstack.oidc import OidcProvider
from devstack.postgres import Postgres
from devstack.probes import PROBES, probe_redis_cluster, wait_ready
from devstack.redis_cluster import RedisClusterStack
from devstack.redis_server import Redis
from devstack.service import LocalService
from devstack.tls import tls_services
from stream.redis_client import where
from stream.settings import Settings, get_settings

logger = logging.getLogger("devstack")


def local_services(settings: Settings, *, every: bool = False) -> list[LocalService]:
    """The servers to run; `every` adds a single Redis the settings do not use (to stop it)."""
    # Postgres and Redis first: they come up in a second while the JVM warms up. Where
    # AURORA_REDIS_URL names a cluster, its first node's port is not a single Redis's.
    single = [Redis(settings)] if every or not settings.redis.cluster else []
    return [Postgres(settings), *single, Kafka(settings)]


def cluster_wanted(settings: Settings) -> bool:
    return settings.stack_redis_cluster or settings.redis.cluster


def cluster_up(settings: Settings) -> None:
    cluster = RedisClusterStack(settings)
    result = cluster.up()
    pids = ",".join(str(pid) for pid in cluster.pids())
    print(f"{cluster.name:9} up   pids {pids}  {result.detail}  log {cluster.nodes[0].log}")


def chosen_mode(settings: Settings) -> str:
    if settings.stack_mode != "auto":
        return settings.stack_mode
    return "docker" if compose.docker_available() else "local"


def cmd_up(settings: Settings) -> None:
    mode = chosen_mode(settings)
    settings.stack_dir.mkdir(parents=True, exist_ok=True)
    (settings.stack_dir / "mode").write_text(mode)
    if mode == "docker":
        compose.up(settings)
        for name, probe in PROBES.items():
            result = wait_ready(name, partial(probe, settings), settings.stack_timeout_s, None)
            print(f"{name:9} up   {result.detail}")
    else:
        for service in local_services(settings):
            result = service.up()
            print(f"{service.name:9} up   pid {service.pid()}  {result.detail}  log {service.log}")
    # The cluster runs as local processes in either mode: Debian's redis-server, as the tests
    # and benchmarks that compare it with the single Redis expect.
    if cluster_wanted(settings):
        cluster_up(settings)
    for extra in extra_services(settings):
        result = extra.up()
        print(f"{extra.name:9} up   pid {extra.pid()}  {result.detail}  log {extra.log}")


def extra_services(settings: Settings, *, every: bool = False) -> list[LocalService]:
    """The local processes beside the stack that the settings ask for (`every`: all of them,
    to stop them), in either mode."""
    wanted: list[LocalService] = []
    if every or settings.stack_tls:
        wanted.extend(tls_services(settings))
    if every or settings.stack_oidc:
        wanted.append(OidcProvider(settings))
    return wanted


def cmd_down(settings: Settings) -> None:
    mode_file = settings.stack_dir / "mode"
    mode = mode_file.read_text().strip() if mode_file.exists() else "local"
    # Whoever started it (make up, a test, a benchmark), the cluster stops with the stack.
    if RedisClusterStack(settings).down():
        print(f"{RedisClusterStack.name:9} stopped")
    for extra in extra_services(settings, every=True):
        if extra.down():
            print(f"{extra.name:9} stopped")
    if mode == "docker":
        compose.down(settings)
    else:
        for service in reversed(local_services(settings, every=True)):
            stopped = service.down()
            print(f"{service.name:9} {'stopped' if stopped else 'was not running'}")
    mode_file.unlink(missing_ok=True)


def cmd_clean(settings: Settings) -> None:
    """Stop the stack and delete its state, including data kept outside .stack/ for access."""
    cmd_down(settings)
    root = settings.stack_dir
    if root.exists():
        for entry in root.iterdir():
            if entry.is_symlink():
                shutil.rmtree(entry.resolve(), ignore_errors=True)
        shutil.rmtree(root)
    print(f"removed {root}")


def cmd_status(settings: Settings) -> int:
    mode_file = settings.stack_dir / "mode"
    mode = mode_file.read_text().strip() if mode_file.exists() else "none"
    print(f"stack mode: {mode}")
    if mode == "docker":
        print(compose.status(settings))
    pids = {s.name: s.pid() for s in local_services(settings)} if mode != "docker" else {}
    pg = settings.postgres
    endpoints = {
        "kafka": settings.kafka_bootstrap_servers,
        "postgres": f"{pg.host}:{pg.port}/{pg.database}",
        "redis": where(settings) + ("" if settings.redis.cluster else f"/{settings.redis.db}"),
    }
    healthy = True
    for name, probe in PROBES.items():
        result = probe(settings)
        healthy &= result.ok
        pid = pids.get(name)
        owner = f"pid {pid}" if pid else ("container" if mode == "docker" else "not ours")
        state = "up" if result.ok else "DOWN"
        print(f"{name:9} {state:5} {endpoints[name]:28} {owner:12} {result.detail}")
    cluster = RedisClusterStack(settings)
    nodes = cluster.pids()
    result = probe_redis_cluster(settings)
    # Shown whenever it is wanted, ours or answering: CI checks that `make down` left nothing.
    if cluster_wanted(settings) or any(nodes) or result.ok:
        healthy &= result.ok or not cluster_wanted(settings)
        ports = settings.stack_redis_cluster_ports
        endpoint = f"127.0.0.1:{ports[0]}-{ports[-1]}"
        running = f"pids {','.join(str(p) for p in nodes)}"
        state = "up" if result.ok else "DOWN"
        print(f"{cluster.name:9} {state:5} {endpoint:28} {running:12} {result.detail}")
    wanted = {extra.name for extra in extra_services(settings)}
    for extra in extra_services(settings, every=True):
        result = extra.probe()
        # Shown whenever wanted, ours or answering, as the cluster is.
        if extra.name in wanted or extra.pid() or result.ok:
            healthy &= result.ok or extra.name not in wanted
            running = f"pid {extra.pid()}" if extra.pid() else "not ours"
            state = "up" if result.ok else "DOWN"
            print(f"{extra.name:12} {state:5} {running:12} {result.detail}")
    return 0 if healthy else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "clean"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    settings = get_settings()
    try:
        if args.command == "up":
            cmd_up(settings)
        elif args.command == "down":
            cmd_down(settings)
        elif args.command == "clean":
            cmd_clean(settings)
        else:
            return cmd_status(settings)
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
