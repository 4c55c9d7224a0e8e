"""Postgres and Redis over TLS, against the local stack's encrypted servers (devstack/tls.py).

A real worker writes, and the feature server reads, with the settings production uses
(AURORA_POSTGRES_SSLMODE=verify-full and a CA file, a rediss:// URL and a CA file). The servers
take nothing else: a plain-text connection is refused, and so is a client that trusts another
CA. The encrypted servers run as local processes in either backend, started here if need be.
"""

from __future__ import annotations

import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from devstack.tls import make_ca, tls_services, tls_settings
from stream.settings import Settings
from tests.databases import own_database
from tests.integration.helpers import (
    Worker,
    check_offline,
    check_online_over_http,
    expected_rows,
    feature_server,
    offline_rows,
    post_json,
    produce,
    traffic,
    wait_for,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tls(settings: Settings) -> Iterator[Settings]:
    """The session's settings on the encrypted servers, in a migrated database of their own."""
    for service in tls_services(settings):
        service.up()
    with own_database(tls_settings(settings), "aurora_test_tls") as in_database:
        yield in_database


@pytest.fixture(scope="module")
def wrong_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA that signed nothing the servers present."""
    cert, _ = make_ca(tmp_path_factory.mktemp("wrong-ca"), "Somebody else's CA")
    return cert


def _secure(base: Settings, tls: Settings) -> Settings:
    fields = ("postgres_dsn", "postgres_sslmode", "postgres_sslrootcert", "redis_url")
    return base.model_copy(
        update={name: getattr(tls, name) for name in (*fields, "redis_ssl_ca_file")}
    )


def test_a_worker_and_the_feature_server_run_over_verified_tls(
    tls: Settings, stream_settings: Settings, start_worker: Worker, unique: str, tmp_path: Path
) -> None:
    secure = _secure(stream_settings, tls)
    assert secure.postgres_sslmode == "verify-full" and secure.redis.ssl
    events = traffic(unique, users=6, days=2)
    want = expected_rows(events)
    start_worker(secure)
    produce(secure, events)
    with psycopg.connect(secure.postgres_conninfo()) as conn:
        wait_for(lambda: offline_rows(conn, unique) == len(want), 180, "offline rows", tmp_path)
        check_offline(conn, unique, want)
        with conn.cursor() as cur:
            cur.execute("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            assert cur.fetchone() == (True, "TLSv1.3")
    with feature_server(secure) as base:
        deadline = time.monotonic() + 60
        while True:  # the online rows follow the offline ones in each flush
            try:
                check_online_over_http(base, want)
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)


def test_plain_text_is_refused(tls: Settings) -> None:
    pg = tls.postgres
    plain = f"host={pg.host} port={pg.port} dbname={pg.database} user={pg.user} sslmode=disable"
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        psycopg.connect(plain, connect_timeout=5)
    client = redis.Redis(host=tls.redis.host, port=tls.redis.port, socket_timeout=5)
    with pytest.raises(redis.ConnectionError):
        client.ping()
    client.close()


def test_a_client_trusting_another_ca_is_refused(tls: Settings, wrong_ca: Path) -> None:
    fooled = tls.model_copy(
        update={"postgres_sslrootcert": wrong_ca, "redis_ssl_ca_file": wrong_ca}
    )
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(fooled.postgres_conninfo(), connect_timeout=5)
    parts = fooled.redis
    client = redis.Redis(
        host=parts.host, port=parts.port, ssl=True, ssl_ca_certs=str(wrong_ca), socket_timeout=5
    )
    with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        client.ping()
    client.close()
    # The same client with the stack's CA connects: the CA is what was refused.
    trusting = redis.Redis(
        host=parts.host, port=parts.port, ssl=True, ssl_ca_certs=str(tls.redis_ssl_ca_file)
    )
    assert trusting.ping()
    trusting.close()


def test_the_feature_server_trusting_another_ca_reads_nothing(
    tls: Settings, feast_settings: Settings, wrong_ca: Path
) -> None:
    fooled = _secure(feast_settings, tls).model_copy(update={"redis_ssl_ca_file": wrong_ca})
    body: dict[str, Any] = {
        "features": ["sleep_features:avg_sleep_duration_7d"],
        "entities": {"user_id": ["nobody"]},
    }
    with feature_server(fooled) as base, pytest.raises(urllib.error.HTTPError, match="500"):
        post_json(f"{base}/get-online-features", body)
