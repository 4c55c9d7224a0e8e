"""What the sinks' retry takes for transient: a server away, one node or a cluster's master."""

from __future__ import annotations

import pytest
import redis
from redis.exceptions import ClusterDownError, RedisClusterException

from stream.errors import SinkRetryExhaustedError
from stream.sinks.base import transient, with_retry


def _raised_from(error: BaseException, cause: BaseException) -> BaseException:
    try:
        raise error from cause
    except BaseException as exc:
        return exc


def test_a_cluster_master_away_is_transient_a_misconfigured_client_is_not() -> None:
    assert transient(redis.ConnectionError("refused"))
    assert transient(ClusterDownError("CLUSTERDOWN The cluster is down"))
    # redis-py's cluster client reaching no node: its generic error, raised from the refusal.
    unreachable = RedisClusterException("Redis Cluster cannot be connected")  # type: ignore[no-untyped-call]
    assert transient(_raised_from(unreachable, redis.ConnectionError("refused")))
    misconfigured = RedisClusterException("Argument 'db' is not possible to use")  # type: ignore[no-untyped-call]
    assert not transient(misconfigured)
    assert not transient(redis.ResponseError("WRONGTYPE"))


def test_the_retry_repeats_a_cluster_outage_and_stops_at_anything_else() -> None:
    outcomes: list[BaseException | None] = [ClusterDownError("down"), redis.TimeoutError(), None]

    def write() -> str:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome
        return "written"

    assert with_retry(write, "test write", sleep=lambda _: None) == "written"
    with pytest.raises(redis.ResponseError):
        with_retry(_wrong_type, "w", sleep=lambda _: None)
    with pytest.raises(SinkRetryExhaustedError):
        with_retry(_down, "w", give_up_after_s=-1.0, sleep=lambda _: None)


def _down() -> None:
    raise ClusterDownError("down")


def _wrong_type() -> None:
    raise redis.ResponseError("WRONGTYPE")
