"""A deterministic synthetic event stream: N users over D days, with lateness, duplicates and junk.

The same config gives the same bytes, in the same order, on every run and machine: every draw
comes from `random.Random` instances seeded from the config, and nothing reads the clock.
Each user draws from a random stream of its own (see `stream.synth.population`), and the defects
from another, so turning a defect up or down leaves the users' behaviour as it was.

Emission order is event time, except that an out-of-order event is emitted late (by minutes to a
few hours, never more than `MAX_DELAY`) and a duplicate repeats an earlier event's exact bytes
later. The fractions are per original event: `invalid` replaces that share of events by broken
bytes, `out_of_order` delays that share, `duplicates` adds that many extra copies.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final, NamedTuple

import orjson

from stream.core.events import SCHEMA_VERSION, Event
from stream.errors import GeneratorConfigError
from stream.synth.invalid import break_event
from stream.synth.population import DAY_MS, MINUTE_MS, SYNC_APP, Clock, make_user, user_day

# Nothing is emitted later than this after its event time.
MAX_DELAY: Final = timedelta(hours=6)
_MAX_DELAY_MS: Final = int(MAX_DELAY.total_seconds() * 1000)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate; `start` is an aware datetime, the stream covers [start, start + days)."""

    users: int
    days: int
    seed: int
    start: datetime
    out_of_order: float = 0.0
    duplicates: float = 0.0
    invalid: float = 0.0
    user_prefix: str = "u"

    def __post_init__(self) -> None:
        if self.users < 1:
            raise GeneratorConfigError("users", "must be at least 1")
        if self.days < 1:
            raise GeneratorConfigError("days", "must be at least 1")
        if self.start.tzinfo is None:
            raise GeneratorConfigError("start", "must carry a UTC offset")
        for name in ("out_of_order", "duplicates", "invalid"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise GeneratorConfigError(name, "must be a fraction in [0, 1]")

    def user_id(self, index: int) -> str:
        return f"{self.user_prefix}{index:05d}"


class GeneratedEvent(NamedTuple):
    """One message as it goes on the wire, with what a test needs to know about it.

    `event_type` is the type the message claims (its topic) even when the bytes are garbage;
    `key` is the Kafka key the app would use; `user_id` is None when it cannot be read back.
    A NamedTuple rather than a frozen dataclass: as immutable, and four times cheaper to build,
    which shows at one per message.
    """

    raw: bytes
    event: Event | None
    valid: bool
    event_type: str
    user_id: str | None
    duplicate: bool
    key: bytes
    breakage: str | None = None


def default_start(now: datetime, days: int) -> datetime:
    """The start that makes a `days`-long stream end at the hour `now` falls in."""
    hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return hour - timedelta(days=days)


def generate(config: GeneratorConfig) -> Iterator[GeneratedEvent]:
    """Yield the stream in emission order."""
    start_ms = _ms(config.start)
    end_ms = start_ms + config.days * DAY_MS
    population = [config.user_id(i) for i in range(config.users)]
    users = [make_user(config.seed, i, uid) for i, uid in enumerate(population)]
    clocks = [Clock(u.traits.offset_min, u.traits.offset_text, u.traits.millis) for u in users]
    defects = random.Random(f"aurora-defects:{config.seed}")  # noqa: S311 (reproducible on purpose)
    pending: list[tuple[int, int, GeneratedEvent]] = []
    seq = 0
    first = (config.start - timedelta(days=1)).astimezone(UTC).date()
    last = (config.start + timedelta(days=config.days + 1)).astimezone(UTC).date()
    for ordinal in range(first.toordinal(), last.toordinal() + 1):
        day = date.fromordinal(ordinal)
        for user, clock in zip(users, clocks, strict=True):
            todays = user_day(user, day, clock, population)
            todays.sort(key=_time)
            for exact_ms, event_type, payload in todays:
                # Order by the time as written, or a seconds-only timestamp could sort before the
                # millisecond one it truncates to.
                t_ms = clock.truncate(exact_ms)
                if not start_ms <= t_ms < end_ms:
                    continue
                app = SYNC_APP if event_type == "sync" else user.traits.source_app
                event = _envelope(user.rng, user.traits.user_id, event_type, t_ms, clock, payload)
                event["source_app"] = app
                for emit_at, generated in _emissions(config, defects, event, t_ms):
                    heapq.heappush(pending, (emit_at, seq, generated))
                    seq += 1
        # A user's local day starts at its local midnight, at most 14 hours before the next UTC
        # midnight: nothing generated from here on can be due before this day's UTC midnight.
        watermark = (ordinal - _EPOCH.toordinal()) * DAY_MS
        while pending and pending[0][0] < watermark:
            yield heapq.heappop(pending)[2]
    while pending:
        yield heapq.heappop(pending)[2]


def _emissions(
    config: GeneratorConfig, defects: random.Random, event: Event, t_ms: int
) -> list[tuple[int, GeneratedEvent]]:
    user_id: str = event["user_id"]
    key = user_id.encode()
    event_type: str = event["event_type"]
    emit_at = t_ms
    if config.out_of_order and defects.random() < config.out_of_order:
        emit_at += _delay(defects)
    if config.invalid and defects.random() < config.invalid:
        broken = break_event(event, defects)
        bad = GeneratedEvent(
            _exact(broken.raw), None, False, event_type, broken.user_id, False, key, broken.kind
        )
        return [(emit_at, bad)]
    raw = _exact(orjson.dumps(event))
    out = [(emit_at, GeneratedEvent(raw, event, True, event_type, user_id, False, key))]
    if config.duplicates and defects.random() < config.duplicates:
        # A retry after a lost acknowledgement: the same bytes, seconds to hours later.
        again = GeneratedEvent(raw, event, True, event_type, user_id, True, key)
        out.append((emit_at + _delay(defects), again))
    return out


def _exact(raw: bytes) -> bytes:
    """`raw` copied to its length: orjson's output holds a 4 KB allocation however short it is
    (orjson 3.13), and benchmarks hold millions of messages (the soak reached 23 GB)."""
    return b"%b" % raw


def _delay(rng: random.Random) -> int:
    # Log-uniform between one minute and MAX_DELAY: most stragglers are minutes late, a few hours.
    return min(int(MINUTE_MS * (_MAX_DELAY_MS / MINUTE_MS) ** rng.random()), _MAX_DELAY_MS)


def _envelope(
    rng: random.Random, user_id: str, event_type: str, t_ms: int, clock: Clock, payload: Event
) -> Event:
    bits = rng.getrandbits(128)
    # Version 4, RFC 4122 variant, so the ids look like every client library's uuid4().
    bits = (bits & ~(0xF000 << 64) | (0x4000 << 64)) & ~(0xC000 << 48) | (0x8000 << 48)
    h = f"{bits:032x}"
    return {
        "event_id": f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}",
        "user_id": user_id,
        "event_type": event_type,
        "event_timestamp": clock.format(t_ms),
        "schema_version": SCHEMA_VERSION,
        "source_app": "",  # set by the caller, which knows the app
        "payload": payload,
    }


def _time(item: tuple[int, str, Event]) -> int:
    return item[0]


def _ms(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)
