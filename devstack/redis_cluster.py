"""A 3-master Redis Cluster from Debian's package, beside the single Redis of the local stack.

Three redis-server processes on loopback (`stack_redis_cluster_port` and the next two; their
cluster bus 10000 above), each a LocalService with its data, AOF and nodes.conf in
.stack/redis-cluster/<port>, joined once by `redis-cli --cluster create`. A node restarted keeps
its nodes.conf, so it rejoins with its slots. Invariant: `up` returns only once every node says
cluster_state:ok with all 16384 slots assigned; `down` stops only the nodes this stack started.

No replicas: this is the online store's sharding on one machine, for development, the tests
and the benchmarks, not a failover drill. `cluster-require-full-coverage no` keeps the other
masters serving their slots while one is away, as a production cluster of one shard down would.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from devstack.errors import StackError
from devstack.probes import ProbeResult, probe_redis_cluster, probe_redis_node, wait_ready
from devstack.proc import ensure_debian_package
from devstack.redis_server import Redis
from devstack.service import LocalService
from stream.settings import Settings

# How long a master may be silent before the others mark it failed. Short, so that a restarted
# node's absence is noticed and over within seconds in the tests.
NODE_TIMEOUT_MS = 5000
SLOTS = 16384


class RedisClusterNode(Redis):
    """One master of the local cluster."""

    def __init__(self, settings: Settings, port: int) -> None:
        self.name = f"redis-cluster-{port}"
        self.port = port
        super().__init__(settings)

    def spawn(self) -> int:
        extra = [
            "cluster-enabled yes",
            "cluster-config-file nodes.conf",
            f"cluster-node-timeout {NODE_TIMEOUT_MS}",
            "cluster-require-full-coverage no",
        ]
        folder = self.root / "redis-cluster" / str(self.port)
        return self.start_server(folder, "127.0.0.1", self.port, extra)

    def wait(self) -> ProbeResult:
        return self.wait_for(lambda: probe_redis_node(self.settings, self.port))


class RedisClusterStack:
    """The three nodes and the cluster they form."""

    name = "redis-cluster"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.nodes = [RedisClusterNode(settings, p) for p in settings.stack_redis_cluster_ports]

    def node(self, port: int) -> RedisClusterNode:
        return next(n for n in self.nodes if n.port == port)

    def pids(self) -> list[int | None]:
        return [node.pid() for node in self.nodes]

    def up(self) -> ProbeResult:
        """Start the nodes that are not running, join them if they never were, wait for ok."""
        for node in self.nodes:
            node.up()
        state = probe_redis_cluster(self.settings)
        if not state.ok and self._fresh():
            self._create()
        return wait_ready(
            self.name,
            lambda: probe_redis_cluster(self.settings),
            self.settings.stack_timeout_s,
            self.nodes[0].log,
            alive=lambda: all(self.pids()),
        )

    def down(self) -> bool:
        """Stop the nodes this stack started; True when there was one."""
        stopped = [node.down() for node in reversed(self.nodes)]
        return any(stopped)

    def _fresh(self) -> bool:
        """Whether no node has slots or knows another yet: a cluster never created."""
        import redis

        password = self.settings.redis.password or None
        for node in self.nodes:
            client = redis.Redis(host="127.0.0.1", port=node.port, password=password)
            try:
                info: dict[str, str] = client.cluster("INFO")  # type: ignore[assignment]  # sync
            finally:
                client.close()
            if int(info["cluster_slots_assigned"]) or int(info["cluster_known_nodes"]) > 1:
                return False
        return True

    def _create(self) -> None:
        cli = ensure_debian_package("redis-tools", lambda: shutil.which("redis-cli"))
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        env = dict(os.environ)
        password = self.settings.redis.password
        if password:
            env["REDISCLI_AUTH"] = password  # not argv: it would show in `ps`
        argv = [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0"]
        result = subprocess.run(
            [*argv, "--cluster-yes"], env=env, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise StackError(
                f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
                f"\nA half-made cluster is not repaired: `make down`, remove "
                f"{self.settings.stack_dir / 'redis-cluster'} and start again."
            )


def cluster_services(settings: Settings) -> list[LocalService]:
    """The cluster's nodes as services, for `make down` and the pid listing of `make status`."""
    return list(RedisClusterStack(settings).nodes)
