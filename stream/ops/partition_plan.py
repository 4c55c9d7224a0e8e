"""Which day partitions the archive and snapshot tables need made, and which have expired.

Pure: from a table's partitions as Postgres reports them, the days its DEFAULT partition holds
rows of, the time now and the settings, `plan` says what to create, what to drop and what in the
default to delete; stream/ops/partitions.py does it. Invariants: a partition is dropped only when
every time it covers is older than the retention (so only whole days go, and never the day a
row of the retention may still fall in); a day is made when it is within the days ahead or the
default holds rows of it that the retention keeps; and nothing the plan makes is also dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

from stream.errors import ConfigError

DAY: Final = timedelta(days=1)
# Postgres prints a range partition's bound as FOR VALUES FROM ('<t>') TO ('<t>'), each side
# MINVALUE or MAXVALUE when open; times in the session's time zone (UTC here).
_RANGE: Final = re.compile(r"^FOR VALUES FROM \((.+)\) TO \((.+)\)$")


@dataclass(frozen=True)
class Partition:
    """One partition: its name, and the times it covers, [start, end); None is open-ended."""

    name: str
    start: datetime | None
    end: datetime | None
    default: bool = False
    size_bytes: int = 0

    def covers(self, day: date) -> bool:
        begin = midnight(day)
        return (
            not self.default
            and (self.start is None or self.start <= begin)
            and (self.end is None or self.end >= begin + DAY)
        )


@dataclass
class Plan:
    create: list[date] = field(default_factory=list)
    drop: list[Partition] = field(default_factory=list)
    # Rows in the DEFAULT partition older than the retention: too few to be worth a partition.
    delete_default_before: datetime | None = None

    def __bool__(self) -> bool:
        return bool(self.create or self.drop or self.delete_default_before)


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def partition_name(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def parse_bound(name: str, expr: str, size_bytes: int = 0) -> Partition:
    """A partition from `pg_get_expr(relpartbound, oid)` in a UTC session."""
    if expr == "DEFAULT":
        return Partition(name, None, None, default=True, size_bytes=size_bytes)
    match = _RANGE.match(expr)
    if not match:
        raise ConfigError(f"partition {name} is not a range of times: {expr}")
    return Partition(name, _moment(match.group(1)), _moment(match.group(2)), size_bytes=size_bytes)


def _moment(text: str) -> datetime | None:
    if text in ("MINVALUE", "MAXVALUE"):
        return None
    moment = datetime.fromisoformat(text.strip("'"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def expiry(now: datetime, keep_days: int | None) -> datetime | None:
    """Rows older than this may go; None keeps everything."""
    return None if keep_days is None else now - timedelta(days=keep_days)


def plan(
    partitions: list[Partition],
    default_days: set[date],
    now: datetime,
    days_ahead: int,
    keep_days: int | None,
) -> Plan:
    """What one table needs: days to make, partitions to drop, old default rows to delete."""
    result = Plan()
    cutoff = expiry(now, keep_days)
    today = now.astimezone(UTC).date()
    last = today + timedelta(days=days_ahead)
    ranged = [p for p in partitions if not p.default]

    def kept(day: date) -> bool:
        return cutoff is None or midnight(day) + DAY > cutoff

    wanted = {today + timedelta(days=n) for n in range(days_ahead + 1)}
    # A day of the default's rows later than the days ahead waits there until it is one of them.
    wanted |= {d for d in default_days if d <= last}
    result.create = sorted(d for d in wanted if kept(d) and not any(p.covers(d) for p in ranged))
    if cutoff is not None:
        result.drop = [p for p in ranged if p.end is not None and p.end <= cutoff]
        if any(not kept(d) for d in default_days):
            result.delete_default_before = midnight(cutoff.astimezone(UTC).date())
    return result
