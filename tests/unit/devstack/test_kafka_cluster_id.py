"""The local Kafka's cluster id: one its storage tool accepts, whatever uuid4 gives."""

from __future__ import annotations

import base64
import uuid

import pytest

from devstack import kafka


def test_ids_are_kafka_uuids_that_never_start_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    # 0xf8 as the first byte encodes to "-" first in URL-safe base64: the id that failed a format.
    dashed = uuid.UUID(bytes=bytes([0xF8]) + bytes(15))
    plain = uuid.UUID(bytes=bytes([0x10]) + bytes(15))
    drawn = iter([dashed, dashed, plain])
    monkeypatch.setattr(uuid, "uuid4", lambda: next(drawn))
    assert base64.urlsafe_b64encode(dashed.bytes).decode().startswith("-")
    cluster_id = kafka.new_cluster_id()
    assert cluster_id == base64.urlsafe_b64encode(plain.bytes).decode().rstrip("=")
    assert len(cluster_id) == 22


def test_random_ids_are_distinct_and_valid() -> None:
    ids = {kafka.new_cluster_id() for _ in range(2_000)}
    assert len(ids) == 2_000
    assert not any(i.startswith("-") for i in ids)
    assert all(len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)
