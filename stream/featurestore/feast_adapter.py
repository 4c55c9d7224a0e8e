"""Feast's private names, in one place: what this project uses of Feast beyond its public API.

`FeatureStore.push` re-reads the registry and converts rows through pandas on every call; the
sinks call what it ends in instead (docs/decisions/0004-rows-straight-to-the-stores.md). The
feature server reads its permissions from the registry's cache
(docs/decisions/0024-permissions-from-the-registry-cache.md). What that relies on, checked by
tests/unit/featurestore/test_feast_adapter.py, which names the assumption that an upgrade broke:

- `FeatureStore._get_provider()`: the provider whose `online_write_batch` and
  `ingest_df_to_offline_store` `push` calls;
- `FeatureStore._fvs_for_push_source_or_raise(source, allow_cache)`: the views a push source
  feeds;
- `FeatureStore._precompute_for_push(view, frame)`: the on-demand views precomputed on push;
- `feast.infra.online_stores.redis._versioned_fv_name(view, config)`: the view's name in keys;
- `RedisOnlineStore._get_client(config)`: the store's Redis client;
- `feast.infra.utils.postgres.connection_utils._get_conn`, `_get_conninfo` and
  `_get_conn_kwargs`: a psycopg connection as Feast's Postgres stores open one;
- a `SecurityManager`'s `_current_project`, `_project` and `_registry`: the project a request
  names and the registry its permissions come from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from feast.infra.online_stores import redis as _redis
from feast.infra.utils.postgres import connection_utils as _pg

if TYPE_CHECKING:
    import pandas as pd
    import psycopg
    from feast import FeatureStore
    from feast.feature_view import FeatureView
    from feast.permissions.permission import Permission
    from feast.repo_config import RepoConfig

# (owner, name): every private name used, for the test that checks them after an upgrade.
ASSUMED: tuple[tuple[Any, str], ...] = (
    ("feast.FeatureStore", "_get_provider"),
    ("feast.FeatureStore", "_fvs_for_push_source_or_raise"),
    ("feast.FeatureStore", "_precompute_for_push"),
    ("feast.infra.online_stores.redis", "_versioned_fv_name"),
    ("feast.infra.online_stores.redis.RedisOnlineStore", "_get_client"),
    ("feast.infra.utils.postgres.connection_utils", "_get_conn"),
    ("feast.infra.utils.postgres.connection_utils", "_get_conninfo"),
    ("feast.infra.utils.postgres.connection_utils", "_get_conn_kwargs"),
)
# Attributes a SecurityManager sets on itself (not callables), checked on an instance.
MANAGER_ASSUMED: tuple[str, ...] = ("_current_project", "_project", "_registry")


def provider(store: FeatureStore) -> Any:
    return store._get_provider()


def push_source_views(store: FeatureStore, source: str) -> list[FeatureView]:
    """The feature views a push source feeds, by name (Feast raises its own error for an
    unknown source)."""
    found = store._fvs_for_push_source_or_raise(source, allow_cache=True)
    return sorted(found, key=lambda v: v.name)  # type: ignore[arg-type]  # push feeds FeatureViews


def precompute_for_push(store: FeatureStore, view_name: str, frame: pd.DataFrame) -> None:
    store._precompute_for_push(view_name, frame)


def versioned_view_name(fv: FeatureView, config: RepoConfig) -> str:
    name: str = _redis._versioned_fv_name(fv, config)
    return name


def redis_client(store: Any, online_config: Any) -> Any:
    """The Redis client of Feast's Redis online store (a cluster client where so configured)."""
    return store._get_client(online_config)


def postgres_connection(config: Any) -> psycopg.Connection[Any]:
    """A new connection as Feast's Postgres stores open one for `config`."""
    conn: psycopg.Connection[Any] = _pg._get_conn(config)
    return conn


def postgres_connection_key(config: Any) -> str:
    """What identifies the server and the credentials of `config` (to reuse its connection)."""
    return f"{_pg._get_conninfo(config)} {sorted(_pg._get_conn_kwargs(config).items())}"


def cached_permissions(manager: Any) -> list[Permission]:
    """The permissions of the request's project, from the registry's cache."""
    project = manager._current_project.get() or manager._project
    found: list[Permission] = manager._registry.list_permissions(project=project, allow_cache=True)
    return found
