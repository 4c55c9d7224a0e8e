"""The private names of Feast the sinks rely on are still there (stream/sinks/feast_adapter.py).

An upgrade that renames one fails here, naming the assumption, instead of in the writer process.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from stream.sinks import feast_adapter


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
        f"Feast's {owner} has no callable {name}: stream/sinks/feast_adapter.py relies on it"
    )
