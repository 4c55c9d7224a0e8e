"""Settings: defaults, parsing of DSN and URL, and clear errors for bad values."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from stream.settings import Settings


def test_defaults_point_at_the_local_stack() -> None:
    settings = Settings()
    assert settings.kafka_servers == [("127.0.0.1", 19092)]
    assert (settings.postgres.host, settings.postgres.port) == ("127.0.0.1", 15432)
    assert (settings.redis.host, settings.redis.port, settings.redis.db) == ("127.0.0.1", 16379, 0)


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AURORA_KAFKA_BOOTSTRAP_SERVERS", "k1:9092, k2:9093")
    monkeypatch.setenv("AURORA_POSTGRES_DSN", "postgresql://feast:p%40ss@db.internal:6543/features")
    monkeypatch.setenv("AURORA_POSTGRES_SSLMODE", "verify-full")
    monkeypatch.setenv("AURORA_REDIS_URL", "rediss://:s3cret@cache:6380/2")
    settings = Settings()
    assert settings.kafka_servers == [("k1", 9092), ("k2", 9093)]
    pg = settings.postgres
    assert (pg.host, pg.port, pg.database, pg.user, pg.password) == (
        "db.internal",
        6543,
        "features",
        "feast",
        "p@ss",
    )
    assert "sslmode='verify-full'" in settings.postgres_conninfo()
    assert settings.redis.ssl and settings.redis.password == "s3cret" and settings.redis.db == 2


def test_secrets_are_masked_when_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AURORA_POSTGRES_DSN", "postgresql://u:topsecret@h:5432/d")
    monkeypatch.setenv("AURORA_REDIS_URL", "redis://:alsosecret@h:6379/0")
    text = f"{Settings()!r} {Settings()}"
    assert "topsecret" not in text and "alsosecret" not in text


def test_conninfo_quotes_awkward_passwords() -> None:
    settings = Settings(postgres_dsn="postgresql://u:it%27s%20a%20pass@h:5432/d")
    assert "password='it\\'s a pass'" in settings.postgres_conninfo()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("kafka_bootstrap_servers", "localhost", "is not host:port"),
        ("postgres_dsn", "mysql://h/d", "postgresql://"),
        ("redis_url", "http://h:6379", "redis://"),
        ("redis_url", "redis://h1:6379,:6380/0", "names no host"),
        ("redis_url", "redis://h1:port/0", "is not a number"),
        ("redis_url", "redis://h1:7000,h2:7001/2", "only database 0"),
        ("stack_redis_cluster_port", "60000", "less than or equal"),
        ("postgres_sslmode", "sometimes", "Input should be"),
        ("stack_mode", "kubernetes", "Input should be"),
    ],
)
def test_bad_values_are_refused_with_a_reason(field: str, value: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings.model_validate({field: value})


def test_kafka_sasl_ssl_reaches_every_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AURORA_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("AURORA_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("AURORA_KAFKA_SASL_USERNAME", "ingest")
    monkeypatch.setenv("AURORA_KAFKA_SASL_PASSWORD", "kafkasecret")
    settings = Settings()
    assert settings.kafka_client_config() == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "ingest",
        "sasl_plain_password": "kafkasecret",
    }
    aio = settings.aiokafka_client_config()
    assert aio["security_protocol"] == "SASL_SSL" and aio["ssl_context"] is not None
    credentials = settings.faust_credentials()
    assert (credentials.protocol.value, credentials.mechanism.value) == (
        "SASL_SSL",
        "SCRAM-SHA-512",
    )
    assert "kafkasecret" not in f"{settings!r} {settings} {credentials!r}"
    # A child process (the worker, the writer) gets the same settings back.
    monkeypatch.delenv("AURORA_KAFKA_SASL_PASSWORD")
    for key, value in settings.to_env().items():
        monkeypatch.setenv(key, value)
    assert Settings().kafka_client_config() == settings.kafka_client_config()


def test_plaintext_kafka_adds_nothing() -> None:
    settings = Settings()
    assert settings.kafka_client_config() == {}
    assert settings.faust_credentials() is None
    assert "AURORA_KAFKA_SSL_CAFILE" not in settings.to_env()


def test_sasl_without_credentials_is_refused() -> None:
    with pytest.raises(ValidationError, match="AURORA_KAFKA_SASL_USERNAME"):
        Settings(kafka_security_protocol="SASL_SSL")


def test_a_redis_url_naming_several_nodes_is_a_cluster() -> None:
    redis = Settings(redis_url="rediss://reader:p%40ss@n1:7000,n2:7001,[::1]:7002").redis
    assert redis.cluster and redis.ssl and (redis.username, redis.password) == ("reader", "p@ss")
    assert redis.nodes == (("n1", 7000), ("n2", 7001), ("::1", 7002))
    assert (redis.host, redis.port, redis.db) == ("n1", 7000, 0)
    # One node is a cluster's only when said so (a configuration endpoint).
    assert not Settings(redis_url="redis://n1:7000/0").redis.cluster
    assert Settings(redis_url="redis://n1:7000/0", redis_cluster=True).redis.cluster
    with pytest.raises(ValidationError, match="only database 0"):
        Settings(redis_url="redis://n1:7000/3", redis_cluster=True)


def test_the_local_clusters_settings_keep_everything_else() -> None:
    base = Settings(redis_url="redis://:pw@127.0.0.1:16379/0", stack_redis_cluster_port=18000)
    on_cluster = base.on_stack_redis_cluster()
    assert on_cluster.redis.nodes == (
        ("127.0.0.1", 18000),
        ("127.0.0.1", 18001),
        ("127.0.0.1", 18002),
    )
    assert on_cluster.redis.cluster and on_cluster.redis.password == "pw"
    assert on_cluster.model_copy(update={"redis_url": base.redis_url}).postgres == base.postgres
    # A child process given its variables sees the same cluster.
    env = {k.removeprefix("AURORA_").lower(): v for k, v in on_cluster.to_env().items()}
    assert Settings.model_validate(env).redis == on_cluster.redis


def test_feast_reads_the_redis_the_settings_name() -> None:
    from stream.featurestore.env import feast_environment

    single = feast_environment(Settings(redis_url="rediss://u:pw@h:6380/2"))
    assert single["AURORA_REDIS_TYPE"] == "redis"
    assert single["AURORA_REDIS_CONNECTION_STRING"] == "h:6380,db=2,username=u,password=pw,ssl=true"
    cluster = feast_environment(Settings(redis_url="redis://:pw@n1:7000,n2:7001/0"))
    assert cluster["AURORA_REDIS_TYPE"] == "redis_cluster"
    # No db: Feast hands the options to RedisCluster, which refuses one.
    assert cluster["AURORA_REDIS_CONNECTION_STRING"] == "n1:7000,n2:7001,password=pw"


def test_an_archive_retention_shorter_than_a_replay_reads_is_refused_unless_forced() -> None:
    with pytest.raises(ValueError, match="keep at least 31 days"):
        Settings(archive_retention_days=30)
    assert Settings(archive_retention_days=31).archive_retention_days == 31
    assert (
        Settings(archive_retention_days=7, archive_retention_force=True).archive_retention_days == 7
    )
    assert Settings(snapshot_retention_days=1).snapshot_retention_days == 1


def test_feast_gets_the_tls_roots_of_postgres_and_redis() -> None:
    from stream.featurestore.env import feast_environment

    settings = Settings(
        redis_url="rediss://ingest:pw@db.internal:6380/0",
        redis_ssl_ca_file="/etc/ssl/redis-ca.pem",
        postgres_sslmode="verify-full",
        postgres_sslrootcert="/etc/ssl/pg-ca.pem",
        feast_registry_type="sql",
    )
    env = feast_environment(settings)
    assert env["AURORA_REDIS_CONNECTION_STRING"].endswith(
        ",ssl=true,ssl_ca_certs=/etc/ssl/redis-ca.pem"
    )
    assert env["AURORA_PG_SSLROOTCERT"] == "/etc/ssl/pg-ca.pem"
    assert env["AURORA_FEAST_REGISTRY_PATH"].endswith(
        "?sslmode=verify-full&sslrootcert=/etc/ssl/pg-ca.pem"
    )
    assert "sslrootcert='/etc/ssl/pg-ca.pem'" in settings.postgres_conninfo()
    # Unset, libpq's own default applies: the variable is empty and YAML reads it as null.
    assert feast_environment(Settings())["AURORA_PG_SSLROOTCERT"] == ""


def test_the_auth_section_is_no_auth_unless_oidc_is_asked_for() -> None:
    import json

    import pytest
    from pydantic import ValidationError

    from stream.featurestore.env import feast_auth_section

    assert json.loads(feast_auth_section(Settings())) == {"type": "no_auth"}
    oidc = Settings(
        feast_auth="oidc",
        feast_oidc_discovery_url="https://idp/.well-known/openid-configuration",
        feast_oidc_audience="urn:aurora:features",
    )
    assert json.loads(feast_auth_section(oidc)) == {
        "type": "oidc",
        "auth_discovery_url": "https://idp/.well-known/openid-configuration",
        "client_id": "aurora-feature-server",
        "audience": "urn:aurora:features",
    }
    with pytest.raises(ValidationError, match="AURORA_FEAST_OIDC_DISCOVERY_URL"):
        Settings(feast_auth="oidc")
