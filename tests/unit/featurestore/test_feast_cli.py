"""Permissions through the registry's cache (stream/featurestore/feast_cli.py): a manager reads
its permissions with the cache allowed, for the project the request names."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import pytest
from feast.permissions.security_manager import SecurityManager

from stream.featurestore import feast_cli


class Registry:
    """Records how the permissions were asked for."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def list_permissions(self, **kwargs: Any) -> list[Any]:
        self.calls.append(kwargs)
        return []


@pytest.mark.parametrize(("current", "asked"), [(None, "p"), ("other", "other")])
def test_permissions_come_from_the_cache_of_the_request_project(
    current: str | None, asked: str
) -> None:
    registry = Registry()
    manager = SecurityManager(project="p", registry=registry)  # type: ignore[arg-type]
    original = SecurityManager.permissions
    try:
        assert manager.permissions == []
        assert registry.calls[-1] == {"project": "p"}  # Feast's own: the cache bypassed
        feast_cli.install()
        manager._current_project = ContextVar("current_project", default=current)
        assert manager.permissions == []
        assert registry.calls[-1] == {"project": asked, "allow_cache": True}
    finally:
        SecurityManager.permissions = original  # type: ignore[method-assign]
