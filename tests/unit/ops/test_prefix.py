"""The user-id prefix range selects exactly the ids that start with the prefix."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.ops.prefix import prefix_bounds


@given(prefix=st.text(min_size=1, max_size=6), rest=st.text(max_size=6), other=st.text(max_size=8))
def test_the_range_holds_exactly_the_prefixed_ids(prefix: str, rest: str, other: str) -> None:
    if prefix[-1] == "\U0010ffff":
        return
    lo, hi = prefix_bounds(prefix)
    # Python orders str by code point, as Postgres's C collation orders UTF-8 bytes.
    assert lo <= prefix + rest < hi
    assert (lo <= other < hi) == other.startswith(prefix)


def test_an_empty_prefix_is_refused() -> None:
    with pytest.raises(ValueError, match="empty prefix"):
        prefix_bounds("")
