"""A flush crosses to the writer process whole: the rows (as columns), archive rows, flags and
the range to replace come out as they went in, a NaN as the null the stores write for it."""

from __future__ import annotations

import math

from stream.core.records import Row
from stream.sinks.base import Flush, Replace
from stream.sinks.writer import pack, unpack


def test_a_flush_comes_out_as_it_went_in() -> None:
    rows = [
        Row("sleep_features", "u-1", 1_764_000_000_000_001, {"a": 1.5, "b": 3, "c": None}),
        Row("social_features", "u-2", 1_764_000_000_000_002, {"d": "x", "e": math.nan}),
        Row("sleep_features", "u-1", 1_764_000_000_000_003, {}),
    ]
    archive = [("e-1", "u-1", "sleep", "2026-12-07T10:00:00Z", "{}", "t", 2, 7, False)]
    replace = Replace(1, 2, {"sleep_features": ["u-1"]})
    flush = unpack(pack(Flush(rows, archive, online=False, offline=True, replace=replace)))
    assert flush.rows == [
        rows[0],
        Row("social_features", "u-2", 1_764_000_000_000_002, {"d": "x", "e": None}),
        rows[2],
    ]
    assert [tuple(a) for a in flush.archive] == archive
    assert (flush.online, flush.offline, flush.replace) == (False, True, replace)


def test_an_empty_flush_too() -> None:
    flush = unpack(pack(Flush()))
    assert (flush.rows, flush.archive, flush.replace) == ([], [], None)
