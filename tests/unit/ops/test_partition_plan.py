"""Which days a table's partitions need: made ahead, made for rows DEFAULT caught, dropped whole."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from stream.errors import ConfigError
from stream.ops.partition_plan import Partition, midnight, parse_bound, partition_name, plan

NOW = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
TODAY = NOW.date()


def _day(d: date) -> Partition:
    return Partition(partition_name("t", d), midnight(d), midnight(d) + timedelta(days=1))


def _days(first: int, last: int) -> list[Partition]:
    return [_day(TODAY + timedelta(days=n)) for n in range(first, last + 1)]


def test_bounds_as_postgres_prints_them_in_utc() -> None:
    p = parse_bound(
        "t_p20261207", "FOR VALUES FROM ('2026-12-07 00:00:00+00') TO ('2026-12-08 00:00:00+00')"
    )
    assert (p.start, p.end, p.default) == (
        midnight(TODAY),
        midnight(TODAY) + timedelta(days=1),
        False,
    )
    legacy = parse_bound("t_before", "FOR VALUES FROM (MINVALUE) TO ('2026-12-01 00:00:00+00')")
    assert legacy.start is None and legacy.covers(date(2020, 1, 1)) and not legacy.covers(TODAY)
    assert parse_bound("t_default", "DEFAULT").default
    with pytest.raises(ConfigError, match="not a range of times"):
        parse_bound("t_list", "FOR VALUES IN ('a')")


def test_an_empty_table_gets_today_and_the_days_ahead() -> None:
    todo = plan([Partition("t_default", None, None, default=True)], set(), NOW, 3, None)
    assert todo.create == [TODAY + timedelta(days=n) for n in range(4)]
    assert not todo.drop and todo.delete_default_before is None


def test_made_days_are_not_made_again_and_the_next_day_is_made_as_time_goes_on() -> None:
    assert not plan(_days(0, 3), set(), NOW, 3, None)
    assert plan(_days(0, 3), set(), NOW + timedelta(days=1), 3, None).create == [
        TODAY + timedelta(days=4)
    ]


def test_the_rows_default_caught_get_their_days_unless_too_far_ahead() -> None:
    caught = {TODAY - timedelta(days=200), TODAY + timedelta(days=2), TODAY + timedelta(days=30)}
    todo = plan(_days(0, 1), caught, NOW, 3, None)
    assert todo.create == [
        TODAY - timedelta(days=200),
        TODAY + timedelta(days=2),
        TODAY + timedelta(days=3),
    ]


def test_the_old_rows_partition_covers_its_days() -> None:
    legacy = Partition("t_before", None, midnight(TODAY + timedelta(days=1)))
    assert plan([legacy], {TODAY - timedelta(days=9)}, NOW, 2, None).create == [
        TODAY + timedelta(days=1),
        TODAY + timedelta(days=2),
    ]


def test_only_days_wholly_older_than_the_retention_are_dropped() -> None:
    existing = _days(-12, 3)
    todo = plan(existing, set(), NOW, 3, 10)
    # Ten days back is 09:30 on the 10th day back: that day still holds kept hours.
    assert [p.name for p in todo.drop] == [
        partition_name("t", TODAY - timedelta(days=12)),
        partition_name("t", TODAY - timedelta(days=11)),
    ]
    assert not plan(existing, set(), NOW, 3, None).drop


def test_expired_rows_in_default_are_deleted_not_given_a_day() -> None:
    caught = {TODAY - timedelta(days=40), TODAY - timedelta(days=5)}
    todo = plan(_days(0, 3), caught, NOW, 3, 10)
    assert todo.create == [TODAY - timedelta(days=5)]
    assert todo.delete_default_before == midnight(TODAY - timedelta(days=10))


def test_a_legacy_partition_goes_once_all_of_it_has_expired() -> None:
    legacy = Partition("t_before", None, midnight(TODAY - timedelta(days=20)))
    assert [p.name for p in plan([legacy], set(), NOW, 1, 30).drop] == []
    assert [p.name for p in plan([legacy], set(), NOW, 1, 19).drop] == ["t_before"]
