"""Feature rows into Redis, byte for byte as Feast's Redis online store writes them.

`RedisOnlineStore.online_write_batch` takes an EntityKey proto and a Value proto per field per
row, then serialises each one, hashes each field name with murmur3 and parses a Timestamp per
row: with the protos made for it, about 60% of the writer process at 16,000 events/s
(docs/decisions/0004-rows-straight-to-the-stores.md). For the views here (one string join key;
int64, double and string fields) this module makes the same bytes directly: the key prefix and
the field hashes once per view, each value's protobuf encoding with `struct`. The write itself
is Feast's: one pipeline reads each key's stored event time, a second writes only rows newer
than it and than the batch's earlier rows for that key. On a Redis Cluster the client is Feast's
`RedisCluster` and the pipelines redis-py's cluster pipelines, which send each node its keys'
commands in one round trip; the keys and fields are the same bytes, so a key's hash slot is the
one Feast's own write and read compute.

Reads stay Feast's own, so what is written here must be exactly what Feast writes:
tests/integration/sinks/test_feast_rows.py compares every hash field with Feast's write of the
same rows (out of order, one instant twice, nulls, NaN, non-ASCII ids), and
tests/unit/sinks/test_redis_rows.py each encoding with protobuf's.
"""

from __future__ import annotations

import operator
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import mmh3

from stream.catalog import Dtype, features_of
from stream.core.records import Row
from stream.errors import UnsupportedStoreError
from stream.settings import Settings
from stream.sinks.base import Flush, by_view, latest_per_user

if TYPE_CHECKING:
    from feast.feature_view import FeatureView

_U32: Final = struct.Struct("<I").pack
_DOUBLE: Final = struct.Struct("<Bd").pack
_MASK64: Final = (1 << 64) - 1
# Value's oneof fields (feast/protos/feast/types/Value.proto), as protobuf wire tags.
_INT64_TAG: Final = b"\x20"  # field 4, varint
_DOUBLE_TAG: Final = 0x29  # field 5, 64-bit
_STRING_TAG: Final = b"\x12"  # field 2, length-delimited
_NULL: Final = b""  # an unset Value serialises to nothing
# feast.types.Value_pb2.ValueType.STRING, the type an entity key's parts are written with.
_KEY_STRING: Final = 2


def varint(n: int) -> bytes:
    """Protobuf's base-128 varint of an unsigned 64-bit number."""
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def int64_value(value: Any) -> bytes:
    if value is None:
        return _NULL
    # operator.index takes what protobuf takes (ints, numpy's ints) and refuses a float.
    # A negative int64 is its 64-bit two's complement, ten bytes long.
    return _INT64_TAG + varint(operator.index(value) & _MASK64)


def double_value(value: Any) -> bytes:
    # NaN is null, as in the Values Feast makes of a pandas float column (feast_rows.py).
    if value is None or value != value:
        return _NULL
    return _DOUBLE(_DOUBLE_TAG, value)


def string_value(value: Any) -> bytes:
    if value is None:
        return _NULL
    data: bytes = value.encode("utf-8")
    return _STRING_TAG + varint(len(data)) + data


ENCODERS: Final[dict[Dtype, Callable[[Any], bytes]]] = {
    "int64": int64_value,
    "float64": double_value,
    "string": string_value,
}


def field_hash(key: str) -> bytes:
    """Feast's hash of a Redis hash field name ("<view>:<feature>"): the murmur3 32-bit hash,
    little endian (feast.infra.online_stores.helpers._mmh3; a test holds the two equal)."""
    return _U32(mmh3.hash(key, signed=False))


def timestamp(row_us: int) -> bytes:
    """A google.protobuf.Timestamp of `row_us`, serialised; zero fields are left out."""
    seconds, micros = divmod(row_us, 1_000_000)
    out = (b"\x08" + varint(seconds & _MASK64)) if seconds else b""
    return (out + b"\x10" + varint(micros * 1000)) if micros else out


def timestamp_nanos(data: bytes) -> int:
    """The nanoseconds since the epoch of a serialised Timestamp (fields 1 and 2, varints)."""
    seconds = nanos = 0
    i = 0
    while i < len(data):
        tag = data[i]
        i += 1
        value = shift = 0
        while True:
            byte = data[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        if tag == 0x08:
            seconds = value - (1 << 64) if value >> 63 else value
        elif tag == 0x10:
            nanos = value
        else:
            raise ValueError(f"not a Timestamp: field tag {tag:#x} in {data!r}")
    return seconds * 1_000_000_000 + nanos


class RedisRows:
    """One feature view's rows written as Feast's Redis store writes them.

    `name` is the view's name in Redis (Feast's versioned name); `fields` its features with the
    catalog's types, in the view's order; one string join key; entity keys serialised in
    version 3.
    """

    def __init__(
        self, project: str, name: str, fields: Sequence[tuple[str, Dtype]], join_key: str
    ) -> None:
        self.ts_key = f"_ts:{name}".encode()
        self.fields = [
            (field, field_hash(f"{name}:{field}"), ENCODERS[kind]) for field, kind in fields
        ]
        # serialize_entity_key, version 3, of one string join key: the key count, the key's
        # type, length and name, then the value's type; the value's length and bytes follow.
        key = join_key.encode()
        self.prefix = _U32(1) + _U32(_KEY_STRING) + _U32(len(key)) + key
        self.prefix += _U32(_KEY_STRING)
        self.project = project.encode()

    @classmethod
    def from_catalog(cls, project: str, view_name: str) -> RedisRows:
        """The layout of a catalog view, as Feast lays out its registered view (no Feast)."""
        fields = [(f.name, f.dtype) for f in features_of(view_name)]
        return cls(project, view_name, fields, "user_id")

    @classmethod
    def from_feast(cls, config: Any, fv: FeatureView, join_key: str) -> RedisRows:
        """The layout of a registered view, from Feast's config and view."""
        from feast.value_type import ValueType

        from stream.featurestore.feast_adapter import versioned_view_name

        if config.entity_key_serialization_version != 3:
            raise UnsupportedStoreError("entity keys other than serialisation version 3")
        kinds: dict[Any, Dtype] = {
            ValueType.INT64: "int64",
            ValueType.DOUBLE: "float64",
            ValueType.STRING: "string",
        }
        fields = [(f.name, kinds.get(f.dtype.to_value_type())) for f in fv.features]
        known = [(name, kind) for name, kind in fields if kind is not None]
        if len(known) != len(fields):
            raise UnsupportedStoreError(f"feature view {fv.name!r} has a field of another type")
        return cls(config.project, versioned_view_name(fv, config), known, join_key)

    def same_as(self, other: RedisRows) -> bool:
        """Whether both write the same bytes to the same keys."""
        mine = [(f, h) for f, h, _ in self.fields]
        theirs = [(f, h) for f, h, _ in other.fields]
        ours = (self.ts_key, self.prefix, self.project)
        return ours == (other.ts_key, other.prefix, other.project) and mine == theirs

    def key(self, user_id: str) -> bytes:
        uid = user_id.encode()
        return b"".join((self.prefix, _U32(len(uid)), uid, self.project))

    def write(self, client: Any, rows: Sequence[Row], *, ttl_s: int | None, dedup: bool) -> int:
        """Each row newer than what its key holds; returns how many were written."""
        keys = [self.key(row.user_id) for row in rows]
        ts_key = self.ts_key
        written = 0
        with client.pipeline(transaction=False) as pipe:
            stored: list[Any] = [[None]] * len(rows)
            if dedup:
                for key in keys:
                    pipe.execute_command("HMGET", key, ts_key)
                stored = pipe.execute()
            # The reads all came before any write: a key's earlier rows in this batch count too.
            latest: dict[bytes, int] = {}
            for key, row, (before,) in zip(keys, rows, stored, strict=True):
                nanos = row.row_us * 1000
                seen = max(timestamp_nanos(before) if before else 0, latest.get(key, 0))
                if dedup and seen and nanos <= seen:
                    continue
                latest[key] = nanos
                values = row.values
                args: list[bytes] = [key, ts_key, timestamp(row.row_us)]
                for field, hashed, encode in self.fields:
                    args.append(hashed)
                    args.append(encode(values[field]))
                pipe.execute_command("HSET", *args)
                if ttl_s:
                    pipe.execute_command("EXPIRE", key, ttl_s)
                written += 1
            pipe.execute()
        return written


@dataclass(frozen=True)
class RedisWriter:
    """A view's rows into Redis (one node or a cluster): its layout, the client, Feast's TTL
    and older-row guard."""

    layout: RedisRows
    client: Any
    ttl_s: int | None = None
    dedup: bool = True

    def __call__(self, rows: Sequence[Row]) -> int:
        return self.layout.write(self.client, rows, ttl_s=self.ttl_s, dedup=self.dedup)


def rows_writer(provider: Any, fv: FeatureView, join_key: str) -> RedisWriter:
    """The direct write of `fv`'s rows to Redis, when Feast's store there is Redis.

    Raises UnsupportedStoreError for any other online store, or a view or key encoding this
    module does not make; the caller then uses Feast's `online_write_batch`.
    """
    from feast.infra.online_stores.redis import RedisOnlineStore

    from stream.featurestore.feast_adapter import redis_client

    store = getattr(provider, "online_store", None)
    if not isinstance(store, RedisOnlineStore):
        raise UnsupportedStoreError(f"online store {type(store).__name__}")
    config = provider.repo_config
    online = config.online_store
    return RedisWriter(
        RedisRows.from_feast(config, fv, join_key),
        redis_client(store, online),
        online.key_ttl_seconds,
        not online.skip_dedup,
    )


class RedisOnlineSink:
    """The online sink while Feast is being imported: each catalog view's Redis layout, made
    without Feast, for a feature repository whose online store is a plain Redis one
    (`plain_redis`). The writer process checks it against Feast's own once Feast is loaded."""

    name = "online"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client: Any = None
        self.writers: dict[str, RedisWriter] = {}

    def setup(self) -> None:
        from stream.catalog import VIEWS
        from stream.redis_client import connect

        if self.client is None:
            # A cluster client asks its nodes for the slots as it is made: here, in the
            # set-up's retry, so a worker started while Redis is away waits for it.
            self.client = connect(self.settings)
            # One client (a connection pool per node) for every view, as Feast's store keeps.
            project = self.settings.feast_project
            self.writers = {
                v.name: RedisWriter(RedisRows.from_catalog(project, v.name), self.client)
                for v in VIEWS
            }
        self.client.ping()

    def write(self, flush: Flush) -> None:
        if not flush.online:
            return
        for view_name, rows in by_view(latest_per_user(flush.rows)).items():
            self.writers[view_name](rows)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


def plain_redis(repo: Path, cluster: bool) -> bool:
    """Whether the repository's online store is Redis as Feast lays it out by default: no
    TTL, the older-row guard on, entity keys in version 3, no view versioning, and reached
    through the settings' Redis (`AURORA_REDIS_URL`, one node or a cluster as `cluster` says),
    as the sink without Feast is."""
    import yaml

    config = yaml.safe_load((repo / "feature_store.yaml").read_text())
    online = config.get("online_store") or {}
    registry = config.get("registry") or {}
    kind = "redis_cluster" if cluster else "redis"
    return bool(
        isinstance(online, dict)
        and online.get("type") == "redis"
        and online.get("redis_type", "redis") in (kind, "${AURORA_REDIS_TYPE}")
        and online.get("connection_string") == "${AURORA_REDIS_CONNECTION_STRING}"
        and not online.get("key_ttl_seconds")
        and not online.get("skip_dedup")
        and config.get("entity_key_serialization_version") == 3
        and not (
            isinstance(registry, dict) and registry.get("enable_online_feature_view_versioning")
        )
    )
