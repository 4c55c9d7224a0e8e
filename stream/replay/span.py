"""The time range a replay recomputes, and the history before it that its windows need."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from stream.catalog import TILE, Window
from stream.core.events import to_us
from stream.core.observe import parse_time
from stream.errors import ReplayError

# Enough history before the range for every window at its start.
WARM_UP: Final = Window.D30.duration + TILE  # type: ignore[operator]


@dataclass(frozen=True)
class ReplayRange:
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        for name, moment in (("start", self.start), ("end", self.end)):
            if moment.tzinfo is None:
                raise ReplayError(f"{name} {moment.isoformat()} has no time zone; add one (Z)")
        if self.start >= self.end:
            raise ReplayError(
                f"empty range: start {self.start.isoformat()} is not before end "
                f"{self.end.isoformat()}"
            )

    @property
    def read_from(self) -> datetime:
        return self.start - WARM_UP

    def covers(self, row_us: int) -> bool:
        return to_us(self.start) <= row_us < to_us(self.end)


def parse_moment(text: str) -> datetime:
    """An ISO date or time; a bare date is midnight UTC, a time without zone is refused."""
    try:
        moment = parse_time(text)
    except ValueError:
        raise ReplayError(f"{text!r} is not an ISO date or time (e.g. 2026-11-01T00:00Z)") from None
    if len(text) == 10:  # a date
        moment = moment.replace(tzinfo=UTC)
    return moment


def default_range(now: datetime | None = None) -> ReplayRange:
    now = now or datetime.now(UTC)
    return ReplayRange(now - timedelta(days=30), now)
