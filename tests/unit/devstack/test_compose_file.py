"""docker-compose.kafka.yml agrees with the settings' defaults (no Docker engine runs it here)."""

from __future__ import annotations

import re

from devstack.compose import compose_env
from stream.settings import Settings
from tests.containers import compose_service

_DEFAULT = re.compile(r"\$\{(AURORA_[A-Z_]+):-([^}]*)\}")


def _defaults(text: str) -> dict[str, str]:
    return dict(_DEFAULT.findall(text))


def _expand(text: str, env: dict[str, str]) -> str:
    return _DEFAULT.sub(lambda m: env.get(m.group(1), m.group(2)), text)


def test_every_default_in_the_compose_file_equals_the_settings_default() -> None:
    defaults = compose_env(Settings())
    for name in ("kafka", "postgres", "redis", "setup", "worker", "feature-server"):
        for variable, default in _defaults(str(compose_service(name))).items():
            assert variable in defaults, f"{name} reads {variable}, which the settings never set"
            assert defaults[variable] == default, f"{name}: {variable} defaults differ"


def test_services_images_and_health_checks() -> None:
    kafka, postgres, redis = (compose_service(n) for n in ("kafka", "postgres", "redis"))
    assert kafka["image"].startswith("apache/kafka:4.0.")
    assert int(postgres["image"].split(":")[1]) >= 15
    assert redis["image"].split(":")[1].startswith("7")
    for service in (kafka, postgres, redis):
        assert service["healthcheck"]["test"]


def test_compose_postgres_is_tuned_as_the_local_stack() -> None:
    from devstack.postgres import _TUNING

    assert compose_service("postgres")["command"] == ["postgres", *_TUNING]


def test_ports_follow_the_settings() -> None:
    settings = Settings(
        kafka_bootstrap_servers="127.0.0.1:29092",
        postgres_dsn="postgresql://aurora@127.0.0.1:25432/aurora",
        redis_url="redis://127.0.0.1:26379/0",
    )
    env = compose_env(settings)
    assert _expand(compose_service("kafka")["ports"][0], env) == "127.0.0.1:29092:29092"
    assert _expand(compose_service("postgres")["ports"][0], env) == "127.0.0.1:25432:5432"
    assert _expand(compose_service("redis")["ports"][0], env) == "127.0.0.1:26379:6379"
    listeners = _expand(compose_service("kafka")["environment"]["KAFKA_ADVERTISED_LISTENERS"], env)
    assert "PLAINTEXT://127.0.0.1:29092" in listeners


def test_kraft_single_node() -> None:
    env = compose_service("kafka")["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"


def test_the_app_waits_for_the_migrations_and_the_registry() -> None:
    setup = compose_service("setup")
    assert "python -m stream migrate" in setup["command"][-1]
    assert "python -m stream feast apply" in setup["command"][-1]
    for name in ("worker", "feature-server"):
        service = compose_service(name)
        assert service["depends_on"]["setup"] == {"condition": "service_completed_successfully"}
        # One registry for the three containers: in Postgres, not a file in each.
        assert service["environment"]["AURORA_FEAST_REGISTRY_TYPE"] == "sql"
