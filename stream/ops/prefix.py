"""A user-id prefix as a range of the (user_id, ...) indexes.

`user_id LIKE 'run-%'` cannot use a btree index unless the column's collation is C, so on a
big archive every such count scanned the whole table (about a second at 4M rows, on every poll
of a progress loop). `user_id >= 'run-' AND user_id < 'run.'` selects the same ids by index.
"""

from __future__ import annotations


def prefix_bounds(prefix: str) -> tuple[str, str]:
    """(low, high) such that low <= id < high holds exactly for ids starting with `prefix`."""
    if not prefix:
        raise ValueError("an empty prefix matches every id; no range is needed")
    last = prefix[-1]
    if ord(last) >= 0x10FFFF:
        raise ValueError(f"{prefix!r} ends in the last code point; it has no successor")
    return prefix, prefix[:-1] + chr(ord(last) + 1)


IN_PREFIX = "user_id >= %s AND user_id < %s"
