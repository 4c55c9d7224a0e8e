"""What `make demo` prints is rounded for reading, never negative zero."""

from __future__ import annotations

from typing import Any

import pytest

from stream.cli.demo import readable


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (9.199999999999989, "9.2"),
        (0.6422222220000009, "0.642"),
        (-0.0, "0.0"),
        (-0.00001, "0.0"),
        (1234.56789, "1,234.568"),
        (7, "7"),
        (None, "null"),
        ("walking", "walking"),
    ],
)
def test_readable(value: Any, shown: str) -> None:
    assert readable(value) == shown
