"""Feast's CLI (`python -m stream feast ...`), with permissions read from the registry's cache.

Feast's SecurityManager reads the permissions with the registry's cache bypassed on every check.
With a file or SQL registry that reloads the whole registry per request and, as it resets the
cache's timestamp, also empties Feast's cache of resolved features: every authorized read then
resolves its features from the registry's protos again, which cost the feature server three
quarters of its requests/s (docs/decisions/0024-permissions-from-the-registry-cache.md).

Invariant: the only change to Feast is that permissions come from the registry's cache, as every
other object the server serves does, so an applied change of permission takes effect within the
registry's `cache_ttl_seconds` (feature_store.yaml: 60 s). Without `auth:` there is no security
manager and the change is inert. The private names it relies on are in
stream/featurestore/feast_adapter.py, with the others of Feast.
"""

from __future__ import annotations

from feast.permissions.security_manager import SecurityManager

from stream.featurestore.feast_adapter import cached_permissions


def install() -> None:
    """Make every SecurityManager of this process read permissions through the cache."""
    SecurityManager.permissions = property(cached_permissions)  # type: ignore[assignment,method-assign]  # Feast's property, replaced


def main() -> None:
    install()
    from feast.cli.cli import cli

    cli()


if __name__ == "__main__":
    main()
