"""Kafka over SASL_SSL, against the local broker's own SASL_SSL listener (devstack/kafka.py).

The worker, the producer and the topic admin connect with the settings production uses
(AURORA_KAFKA_SECURITY_PROTOCOL=SASL_SSL, a user name and password, a CA file); a wrong
password and an untrusted certificate are refused. With testcontainers (a Docker engine) the
broker has no such listener and these tests are skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from kafka.errors import KafkaError
from pydantic import SecretStr

from devstack.kafka import SecureListener, secure_listener
from stream.ops.topics import ensure_topics
from stream.settings import Settings
from tests.integration.helpers import (
    Worker,
    archived,
    check_offline,
    distinct_valid,
    expected_rows,
    offline_rows,
    produce,
    traffic,
    wait_for,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def listener(settings: Settings) -> SecureListener:
    found = secure_listener(settings)
    if found is None:
        pytest.skip("the broker has no SASL_SSL listener (only the local stack starts one)")
    return found


def test_worker_and_producer_run_over_sasl_ssl(
    listener: SecureListener,
    stream_settings: Settings,
    start_worker: Worker,
    pg_conn: psycopg.Connection[Any],
    unique: str,
    tmp_path: Path,
) -> None:
    secure = listener.settings(stream_settings)
    ensure_topics(secure)
    events = traffic(unique, users=6, days=2)
    want = expected_rows(events)
    start_worker(secure)
    produce(secure, events)
    distinct = distinct_valid(events)
    wait_for(lambda: archived(pg_conn, unique) == distinct, 180, "the archive", tmp_path)
    wait_for(lambda: offline_rows(pg_conn, unique) == len(want), 180, "offline rows", tmp_path)
    check_offline(pg_conn, unique, want)
    # The worker's log names the broker it reached, never the password it used.
    logs = " ".join(p.read_text(errors="replace") for p in tmp_path.glob("worker-*.log"))
    assert listener.password not in logs


def test_a_wrong_password_is_refused(
    listener: SecureListener,
    stream_settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong = listener.settings(stream_settings).model_copy(
        update={"kafka_sasl_password": SecretStr("not-the-password")}
    )
    # kafka-python retries until its bootstrap times out, and logs why each attempt failed.
    with pytest.raises(KafkaError, match="Unable to bootstrap"):
        ensure_topics(wrong)
    # The broker answers "Invalid username or password", or, once its failed-authentication
    # delay is over, just closes the socket; the same call with the right password succeeds
    # (the test above), so the password is what it refuses.
    assert "Invalid username or password" in caplog.text or "socket disconnected" in caplog.text
    assert "(connected)>: Connected" not in caplog.text
    assert "not-the-password" not in caplog.text


def test_an_untrusted_broker_certificate_is_refused(
    listener: SecureListener,
    stream_settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The system's CAs do not know the local broker's self-signed certificate.
    untrusted = listener.settings(stream_settings).model_copy(update={"kafka_ssl_cafile": None})
    with pytest.raises(KafkaError, match="Unable to bootstrap"):
        ensure_topics(untrusted)
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text
    assert "Invalid username or password" not in caplog.text  # refused before the password
