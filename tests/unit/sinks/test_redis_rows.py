"""The direct Redis encodings make exactly the bytes protobuf makes of the same values."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from feast.protos.feast.types.Value_pb2 import Value
from google.protobuf.timestamp_pb2 import Timestamp

from stream.sinks.redis_rows import (
    double_value,
    field_hash,
    int64_value,
    plain_redis,
    string_value,
    timestamp,
    timestamp_nanos,
    varint,
)

INTS = [0, 1, 127, 128, 300, 16_383, 16_384, 2**31, 2**63 - 1, -1, -128, -(2**63)]
FLOATS = [0.0, -0.0, 1.0, -2.5, 0.1, 1e308, 5e-324, math.inf, -math.inf, 3]
STRINGS = ["", "a", "é", "日本語", "🏃" * 40, "x" * 200]


@pytest.mark.parametrize("value", INTS)
def test_int64(value: int) -> None:
    assert int64_value(value) == Value(int64_val=value).SerializeToString()


@pytest.mark.parametrize("value", FLOATS)
def test_double(value: float) -> None:
    assert double_value(value) == Value(double_val=value).SerializeToString()


@pytest.mark.parametrize("value", STRINGS)
def test_string(value: str) -> None:
    assert string_value(value) == Value(string_val=value).SerializeToString()


def test_null_and_nan_are_an_unset_value() -> None:
    unset = Value().SerializeToString()
    assert int64_value(None) == double_value(None) == string_value(None) == unset
    assert double_value(math.nan) == unset


def test_an_int64_field_takes_what_protobuf_takes() -> None:
    theirs = Value(int64_val=np.int64(-7))  # type: ignore[arg-type]  # protobuf takes it
    assert int64_value(np.int64(-7)) == theirs.SerializeToString()
    with pytest.raises(TypeError):
        Value(int64_val=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        int64_value(1.5)


@pytest.mark.parametrize(
    "row_us",
    [0, 1, 999_999, 1_000_000, 1_764_000_000_000_000, 1_764_000_000_123_456, -1, -1_500_000],
)
def test_timestamp_both_ways(row_us: int) -> None:
    seconds, micros = divmod(row_us, 1_000_000)
    proto = Timestamp(seconds=seconds, nanos=micros * 1000).SerializeToString()
    assert timestamp(row_us) == proto
    assert timestamp_nanos(proto) == row_us * 1000


def test_timestamp_nanos_reads_what_feast_stores() -> None:
    stored = Timestamp(seconds=1_764_000_000, nanos=7).SerializeToString()
    assert timestamp_nanos(stored) == 1_764_000_000_000_000_007
    with pytest.raises(ValueError, match="not a Timestamp"):
        timestamp_nanos(Value(string_val="x").SerializeToString())


def test_varint_of_the_largest_number() -> None:
    assert varint(2**64 - 1) == b"\xff" * 9 + b"\x01"


@pytest.mark.parametrize("key", ["sleep_features:sleep_quality_score", "a:b", "é:日本", ""])
def test_field_names_hash_as_feasts(key: str) -> None:
    from feast.infra.online_stores.helpers import _mmh3

    assert field_hash(key) == _mmh3(key)


def test_entity_keys_are_written_with_feasts_string_type() -> None:
    from feast.protos.feast.types.Value_pb2 import ValueType

    from stream.sinks import redis_rows

    assert redis_rows._KEY_STRING == ValueType.STRING


def test_only_the_repositorys_own_redis_is_written_without_feast(tmp_path: Path) -> None:
    repo = Path(__file__).parents[3] / "feature_repo"
    ours = (repo / "feature_store.yaml").read_text()
    # The repository's store follows the settings: one node or a cluster.
    assert plain_redis(repo, cluster=False) and plain_redis(repo, cluster=True)
    follows = "redis_type: ${AURORA_REDIS_TYPE}"
    for changed, cluster in (
        # Another Redis than the settings' one: the sink without Feast would write elsewhere.
        (ours.replace('"${AURORA_REDIS_CONNECTION_STRING}"', '"redis.internal:6379"'), False),
        # A store of the other kind than the settings': Feast reads where the sink does not write.
        (ours.replace(follows, "redis_type: redis_cluster"), False),
        (ours.replace(follows, "redis_type: redis"), True),
        (ours.replace("type: redis", "type: redis\n  key_ttl_seconds: 600"), False),
        (
            ours.replace(
                "entity_key_serialization_version: 3", "entity_key_serialization_version: 2"
            ),
            False,
        ),
    ):
        assert changed != ours
        (tmp_path / "feature_store.yaml").write_text(changed)
        assert not plain_redis(tmp_path, cluster=cluster)
