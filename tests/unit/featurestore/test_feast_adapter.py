"""The private names of Feast this project relies on are still there
(stream/featurestore/feast_adapter.py).

An upgrade that renames one fails here, naming the assumption, instead of in the writer process.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from stream.featurestore import feast_adapter


def _owner(path: str) -> Any:
    """The module or class a dotted path names: the longest importable prefix, then attributes."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            found = getattr(found, name)
        return found
    raise ImportError(path)


@pytest.mark.parametrize(("owner", "name"), feast_adapter.ASSUMED)
def test_feast_still_has_the_private_name(owner: str, name: str) -> None:
    found = getattr(_owner(owner), name, None)
    assert callable(found), (
        f"Feast's {owner} has no callable {name}: stream/featurestore/feast_adapter.py relies on it"
    )


def test_a_security_manager_still_has_the_attributes_read() -> None:
    from feast.permissions.security_manager import SecurityManager

    manager = SecurityManager(project="p", registry=None)  # type: ignore[arg-type]
    for name in feast_adapter.MANAGER_ASSUMED:
        assert hasattr(manager, name), (
            f"Feast's SecurityManager has no {name}: stream/featurestore/feast_adapter.py reads it"
        )
