"""Least-privilege Redis users (stream/ops/redis_acl.py): each does its job, and nothing else.

A real worker writes the online store as the ingestor and the feature server reads it as the
reader, on the stack's Redis. The refusals (FLUSHDB among them) are tried on a Redis of this
module's own, so that a regression in the rules could never empty the shared store: every
refused command must raise NoPermissionError and leave the data as it was.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from feast import FeatureStore
from feast.data_source import PushMode
from pydantic import SecretStr
from redis.exceptions import NoPermissionError

from devstack.probes import ProbeResult, probe_redis_node
from devstack.redis_server import Redis
from stream.ops.redis_acl import Role, setuser_command
from stream.redis_client import OnlineRedis
from stream.settings import Settings
from tests.containers import free_port
from tests.integration.helpers import (
    Worker,
    expected_rows,
    feature_server,
    offline_rows,
    post_json,
    produce,
    settle,
    snapshot_rows,
    traffic,
    wait_for,
)

pytestmark = pytest.mark.integration

Login = Callable[[Role], Settings]


class PrivateRedis(Redis):
    """A redis-server of this module's own, on a free loopback port."""

    def __init__(self, settings: Settings, port: int) -> None:
        self.name = f"redis-acl-test-{port}"
        self.port = port
        super().__init__(settings)

    def spawn(self) -> int:
        return self.start_server(
            self.root / "redis-acl-test" / str(self.port), "127.0.0.1", self.port, []
        )

    def wait(self) -> ProbeResult:
        return self.wait_for(lambda: probe_redis_node(self.settings, self.port))


def _run(client: OnlineRedis, *command: Any) -> Any:
    return client.execute_command(*command)  # type: ignore[no-untyped-call]  # redis-py's


def _login(admin: OnlineRedis, base: Settings, unique: str, made: list[str]) -> Login:
    def make(role: Role) -> Settings:
        user, password = f"{unique}-{role}", secrets.token_urlsafe(16)
        _run(admin, *setuser_command(user, role, base.feast_project, password))
        made.append(user)
        parts = base.redis
        url = f"redis://{user}:{password}@{parts.host}:{parts.port}/{parts.db}"
        return base.model_copy(update={"redis_url": SecretStr(url)})

    return make


@pytest.fixture
def login(redis_client: OnlineRedis, feast_settings: Settings, unique: str) -> Iterator[Login]:
    """Factory: the session's settings logged in to the stack's Redis as a new user in `role`."""
    made: list[str] = []
    yield _login(redis_client, feast_settings, unique, made)
    for user in made:
        _run(redis_client, "ACL", "DELUSER", user)


@pytest.fixture(scope="module")
def private(settings: Settings) -> Iterator[Settings]:
    server = PrivateRedis(settings, free_port())
    server.up()
    try:
        yield settings.model_copy(
            update={"redis_url": SecretStr(f"redis://127.0.0.1:{server.port}/0")}
        )
    finally:
        server.down()


@pytest.fixture
def private_login(private: Settings, unique: str) -> Iterator[tuple[redis.Redis, Login]]:
    """The private Redis's admin client, emptied, and a factory of its role users."""
    admin = redis.Redis(host="127.0.0.1", port=private.redis.port)
    admin.flushdb()
    made: list[str] = []
    yield admin, _login(admin, private, unique, made)
    for user in made:
        _run(admin, "ACL", "DELUSER", user)
    admin.close()


def _as(settings: Settings) -> redis.Redis:
    parts = settings.redis
    return redis.Redis(
        host=parts.host, port=parts.port, username=parts.username, password=parts.password
    )


def _contents(admin: redis.Redis) -> dict[bytes, Any]:
    """Every key with its value, read as the admin: what a refused command must not change."""
    state: dict[bytes, Any] = {}
    for key in admin.scan_iter():
        kind = admin.type(key)
        state[key] = (kind, admin.hgetall(key) if kind == b"hash" else admin.get(key))
        state[key] += (admin.ttl(key),)
    return state


def _refused(client: redis.Redis, admin: redis.Redis, *command: Any) -> None:
    before = _contents(admin)
    with pytest.raises(NoPermissionError):
        _run(client, *command)
    assert _contents(admin) == before, command


def test_the_ingestor_writes_the_project_and_is_refused_the_rest(
    private_login: tuple[redis.Redis, Login], private: Settings
) -> None:
    admin, login = private_login
    project = private.feast_project
    mine, theirs = f"user-1{project}", "user-1other_project"
    admin.hset(theirs, "f", "theirs")
    ingestor = _as(login("ingestor"))
    # Its job: read a key's event time, write the row, set its expiry.
    assert ingestor.hmget(mine, ["_ts"]) == [None]
    ingestor.hset(mine, mapping={"_ts": "1", "f": "mine"})
    ingestor.expire(mine, 3600)
    assert admin.hgetall(mine) == {b"_ts": b"1", b"f": b"mine"}

    _refused(ingestor, admin, "FLUSHDB")
    _refused(ingestor, admin, "FLUSHALL")
    _refused(ingestor, admin, "DEL", mine)
    _refused(ingestor, admin, "HDEL", mine, "f")
    _refused(ingestor, admin, "SET", mine, "overwritten")
    _refused(ingestor, admin, "KEYS", "*")
    _refused(ingestor, admin, "SCAN", "0")
    _refused(ingestor, admin, "HSET", theirs, "f", "overwritten")
    _refused(ingestor, admin, "HMGET", theirs, "f")
    _refused(ingestor, admin, "HSET", "user-2elsewhere", "f", "planted")
    _refused(ingestor, admin, "CONFIG", "SET", "appendonly", "no")
    _refused(ingestor, admin, "EVAL", "return redis.call('flushdb')", "0")
    _refused(ingestor, admin, "ACL", "SETUSER", "escalated", "on", "+@all", "~*", ">pw")
    _refused(ingestor, admin, "PUBLISH", "channel", "message")
    ingestor.close()


def test_the_reader_reads_the_project_and_writes_nothing(
    private_login: tuple[redis.Redis, Login], private: Settings
) -> None:
    admin, login = private_login
    project = private.feast_project
    mine, theirs = f"user-1{project}", "user-1other_project"
    admin.hset(mine, mapping={"_ts": "1", "f": "mine"})
    admin.hset(theirs, "f", "theirs")
    reader = _as(login("reader"))
    assert reader.hmget(mine, ["_ts", "f"]) == [b"1", b"mine"]

    _refused(reader, admin, "HSET", mine, "f", "overwritten")
    _refused(reader, admin, "HSET", f"user-2{project}", "f", "planted")
    _refused(reader, admin, "EXPIRE", mine, "1")
    _refused(reader, admin, "DEL", mine)
    _refused(reader, admin, "FLUSHDB")
    _refused(reader, admin, "HMGET", theirs, "f")
    _refused(reader, admin, "HGETALL", mine)
    _refused(reader, admin, "SCAN", "0")
    _refused(
        reader,
        admin,
        "ACL",
        "SETUSER",
        reader.connection_pool.connection_kwargs["username"],
        "+@all",
    )
    reader.close()


def test_a_worker_runs_as_the_ingestor(
    login: Login,
    stream_settings: Settings,
    start_worker: Worker,
    feature_store: FeatureStore,
    pg_conn: Any,
    unique: str,
    tmp_path: Path,
) -> None:
    as_ingestor = login("ingestor")
    worker_settings = stream_settings.model_copy(update={"redis_url": as_ingestor.redis_url})
    events = traffic(unique, users=8, days=2)
    want = expected_rows(events)
    start_worker(worker_settings)
    produce(worker_settings, events)
    wait_for(lambda: offline_rows(pg_conn, unique) >= len(want), 180, "offline rows", tmp_path)
    # Read back as the admin: every view's last row per user is in Redis, written as the ingestor.
    settle(feature_store, want, timeout_s=60)
    logs = " ".join(p.read_text(errors="replace") for p in tmp_path.glob("worker-*.log"))
    assert "NOPERM" not in logs and "NoPermission" not in logs


def test_the_feature_server_serves_as_the_reader_and_cannot_write(
    login: Login,
    feature_store: FeatureStore,
    user_ids: Callable[[int], list[str]],
) -> None:
    (user,) = user_ids(1)
    rows = snapshot_rows("sleep_features", [user], datetime.now(UTC), 7.0)
    feature_store.push("sleep_push", rows, to=PushMode.ONLINE)
    ref = "sleep_features:avg_sleep_duration_7d"
    with feature_server(login("reader")) as base:
        body = {"features": [ref], "entities": {"user_id": [user]}}
        answer = post_json(f"{base}/get-online-features", body)
        assert answer["results"][1]["values"][0] == rows["avg_sleep_duration_7d"][0]
        newer = snapshot_rows("sleep_features", [user], datetime.now(UTC), 70.0)
        newer["event_timestamp"] = newer["event_timestamp"].map(datetime.isoformat)
        push = {"push_source_name": "sleep_push", "df": newer.to_dict(orient="list")}
        # No Feast permission stops this push (no_auth); Redis does.
        with pytest.raises(Exception, match="500"):
            post_json(f"{base}/push", push)
        answer = post_json(f"{base}/get-online-features", body)
        assert answer["results"][1]["values"][0] == rows["avg_sleep_duration_7d"][0]
