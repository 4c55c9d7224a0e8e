"""Bridge from Settings to Feast: the variables feature_store.yaml reads, and an opened store."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING
from urllib.parse import quote

from stream.settings import Settings

if TYPE_CHECKING:
    from feast import FeatureStore


def feast_environment(settings: Settings) -> dict[str, str]:
    """The ${AURORA_*} variables feature_store.yaml substitutes, derived from the settings."""
    pg = settings.postgres
    redis = settings.redis
    # Feast's format: host:port[,host:port...] then key=value options, passed to redis-py.
    # A cluster's nodes are all named (Feast's RedisCluster takes them as startup nodes) and
    # it has no db to select.
    if redis.cluster:
        redis_params = [f"{host}:{port}" for host, port in redis.nodes]
    else:
        redis_params = [f"{redis.host}:{redis.port}", f"db={redis.db}"]
    if redis.username:
        redis_params.append(f"username={redis.username}")
    if redis.password:
        redis_params.append(f"password={redis.password}")
    if redis.ssl:
        redis_params.append("ssl=true")
        if settings.redis_ssl_ca_file is not None:
            redis_params.append(f"ssl_ca_certs={settings.redis_ssl_ca_file}")
    if settings.feast_registry_type == "sql":
        credentials = quote(pg.user, safe="")
        if pg.password:
            credentials += ":" + quote(pg.password, safe="")
        registry_path = (
            f"postgresql+psycopg://{credentials}@{pg.host}:{pg.port}/{quote(pg.database)}"
            f"?sslmode={settings.postgres_sslmode}"
        )
        if settings.postgres_sslrootcert is not None:
            registry_path += f"&sslrootcert={quote(str(settings.postgres_sslrootcert))}"
    else:
        registry_path = settings.feast_registry_path
    return {
        "AURORA_FEAST_PROJECT": settings.feast_project,
        "AURORA_FEAST_REGISTRY_TYPE": settings.feast_registry_type,
        "AURORA_FEAST_REGISTRY_PATH": registry_path,
        "AURORA_REDIS_CONNECTION_STRING": ",".join(redis_params),
        "AURORA_REDIS_TYPE": "redis_cluster" if redis.cluster else "redis",
        "AURORA_PG_HOST": pg.host,
        "AURORA_PG_PORT": str(pg.port),
        "AURORA_PG_DATABASE": pg.database,
        "AURORA_PG_SCHEMA": settings.postgres_schema,
        "AURORA_PG_USER": pg.user,
        "AURORA_PG_PASSWORD": pg.password,
        "AURORA_PG_SSLMODE": settings.postgres_sslmode,
        # Empty reads as YAML's null: libpq's default root certificate.
        "AURORA_PG_SSLROOTCERT": str(settings.postgres_sslrootcert or ""),
        "AURORA_FEAST_AUTH_SECTION": feast_auth_section(settings),
    }


def feast_auth_section(settings: Settings) -> str:
    """feature_store.yaml's `auth:` mapping, as one line of YAML (JSON is YAML).

    A whole mapping, not a value per field: Feast's config models forbid unknown fields, so
    no_auth must not carry the OIDC ones."""
    if settings.feast_auth == "no_auth":
        return json.dumps({"type": "no_auth"})
    section: dict[str, str] = {
        "type": "oidc",
        "auth_discovery_url": settings.feast_oidc_discovery_url,
        "client_id": settings.feast_oidc_client_id,
    }
    if settings.feast_oidc_audience:
        section["audience"] = settings.feast_oidc_audience
    if settings.feast_oidc_issuer:
        section["issuer"] = settings.feast_oidc_issuer
    if settings.feast_oidc_ca_file is not None:
        section["ca_cert_path"] = str(settings.feast_oidc_ca_file)
    return json.dumps(section)


def export_feast_environment(settings: Settings) -> None:
    """Export the variables here, and put the repo on sys.path as Feast's CLI does."""
    os.environ.update(feast_environment(settings))
    repo = str(settings.feast_repo_path)
    if repo not in sys.path:
        sys.path.append(repo)


def open_store(settings: Settings) -> FeatureStore:
    """A FeatureStore on the feature repository, configured from the settings."""
    from feast import FeatureStore

    export_feast_environment(settings)
    return FeatureStore(repo_path=str(settings.feast_repo_path))
