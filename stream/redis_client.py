"""The Redis client of the settings: one node, or a Redis Cluster client on its nodes.

Invariant: the client reaches the servers, with the password and TLS, that Feast's connection
string (stream/featurestore/env.py) names, and is of the kind Feast's Redis online store makes
of it (`redis_type: redis_cluster` makes a `RedisCluster` on the same startup nodes), so what the
worker, replay and status read and write is what the feature server reads.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.cluster import ClusterNode, RedisCluster

from stream.settings import Settings

OnlineRedis = redis.Redis | RedisCluster


def connect(settings: Settings, **options: Any) -> OnlineRedis:
    """A client (a connection pool per node) on the settings' Redis; `options` go to redis-py
    (timeouts, say)."""
    parts = settings.redis
    if parts.username:
        options["username"] = parts.username
    if parts.password:
        options["password"] = parts.password
    if parts.ssl:
        options["ssl"] = True
        if settings.redis_ssl_ca_file is not None:
            options["ssl_ca_certs"] = str(settings.redis_ssl_ca_file)
    if parts.cluster:
        # Cluster nodes have no SELECT: the settings refuse a database other than 0.
        nodes = [ClusterNode(host, port) for host, port in parts.nodes]  # type: ignore[no-untyped-call]
        return RedisCluster(startup_nodes=nodes, **options)
    return redis.Redis(host=parts.host, port=parts.port, db=parts.db, **options)


def where(settings: Settings) -> str:
    """The servers, for messages: host:port, or `cluster host:port,...`."""
    parts = settings.redis
    if parts.cluster:
        return "cluster " + ",".join(f"{host}:{port}" for host, port in parts.nodes)
    return f"{parts.host}:{parts.port}"
