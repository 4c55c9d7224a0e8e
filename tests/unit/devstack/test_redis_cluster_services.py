"""Which Redis servers the local stack runs: the single one, the cluster, or both."""

from __future__ import annotations

from pathlib import Path

from devstack.__main__ import cluster_wanted, local_services
from devstack.redis_cluster import RedisClusterStack
from stream.settings import Settings


def test_the_cluster_is_started_when_asked_for_or_named(tmp_path: Path) -> None:
    plain = Settings(stack_dir=tmp_path)
    assert not cluster_wanted(plain)
    assert "redis" in [s.name for s in local_services(plain)]
    asked = Settings(stack_dir=tmp_path, stack_redis_cluster=True)
    assert cluster_wanted(asked) and "redis" in [s.name for s in local_services(asked)]
    # The URL names the cluster: no single Redis on its first node's port, but stopped if it runs.
    named = Settings(stack_dir=tmp_path).on_stack_redis_cluster()
    assert cluster_wanted(named)
    assert "redis" not in [s.name for s in local_services(named)]
    assert "redis" in [s.name for s in local_services(named, every=True)]


def test_each_node_has_its_own_port_pid_file_and_data(tmp_path: Path) -> None:
    stack = RedisClusterStack(Settings(stack_dir=tmp_path, stack_redis_cluster_port=18000))
    assert [n.port for n in stack.nodes] == [18000, 18001, 18002]
    assert len({n.pidfile for n in stack.nodes}) == 3 and len({n.log for n in stack.nodes}) == 3
    assert stack.pids() == [None, None, None] and not stack.down()
