"""Where generated streams go: a JSONL file, or Kafka at a target rate.

JSONL framing: one JSON object per line, one line per Kafka message, in emission order:

    {"event_type": "sleep", "key": "u00003", "valid": true, "duplicate": false, "value": "{...}"}

`value` is the message's exact bytes as a JSON string when they are UTF-8; otherwise `value_b64`
holds them base64-encoded. Wrapping every message, rather than writing valid ones bare, keeps
each line parseable whatever the message is (a truncated message would otherwise be a broken
line), and keeps the topic and key of messages whose bytes say neither, so a file replays to
Kafka exactly as `--kafka` would have sent it. `valid` and `duplicate` are the generator's
ground truth, for tests.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Final, Protocol

import orjson

from stream.errors import JsonlFormatError
from stream.settings import Settings
from stream.synth.generator import GeneratedEvent

PROGRESS_EVERY_S: Final = 5.0


@dataclass(frozen=True, slots=True)
class WireRecord:
    """One message read back from a JSONL file."""

    event_type: str
    key: bytes
    raw: bytes
    valid: bool
    duplicate: bool


def jsonl_line(generated: GeneratedEvent) -> bytes:
    record: dict[str, object] = {
        "event_type": generated.event_type,
        "key": generated.key.decode(),
        "valid": generated.valid,
        "duplicate": generated.duplicate,
    }
    try:
        record["value"] = generated.raw.decode()
    except UnicodeDecodeError:
        record["value_b64"] = base64.b64encode(generated.raw).decode("ascii")
    return orjson.dumps(record) + b"\n"


def write_jsonl(events: Iterable[GeneratedEvent], out: IO[bytes]) -> int:
    """Write one line per message; return how many."""
    count = 0
    for generated in events:
        out.write(jsonl_line(generated))
        count += 1
    return count


def read_jsonl(lines: Iterable[bytes]) -> Iterator[WireRecord]:
    for number, line in enumerate(lines, start=1):
        try:
            record = orjson.loads(line)
            if "value" in record:
                raw = record["value"].encode()
            else:
                raw = base64.b64decode(record["value_b64"], validate=True)
            yield WireRecord(
                record["event_type"],
                record["key"].encode(),
                raw,
                record["valid"],
                record["duplicate"],
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as exc:
            raise JsonlFormatError(number, str(exc)) from None


class RawSender(Protocol):
    def send_raw(self, topic: str, key: bytes | None, value: bytes) -> None: ...


class TokenBucket:
    """Let `rate` events a second through on average, in bursts of at most `burst`."""

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        # A tenth of a second's worth: smooth to a broker, cheap in sleeps.
        self.capacity = burst if burst is not None else max(1.0, rate / 10)
        self._tokens = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._last = clock()

    def take(self) -> None:
        while True:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            # The epsilon absorbs rounding: a sleep shorter than the clock's resolution would
            # otherwise leave the bucket a hair short of a token forever.
            if self._tokens >= 1.0 - 1e-9:
                self._tokens -= 1.0
                return
            self._sleep((1.0 - self._tokens) / self.rate)


def send_to_kafka(
    events: Iterable[GeneratedEvent],
    producer: RawSender,
    settings: Settings,
    rate: float = 0.0,
    progress: Callable[[int, float], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Send each message's raw bytes to the topic of the type it claims; rate 0 = flat out.

    `progress(sent, elapsed_s)` is called every PROGRESS_EVERY_S seconds. Returns the count.
    """
    bucket = TokenBucket(rate, clock=clock) if rate > 0 else None
    topics: dict[str, str] = {}
    started = next_report = clock()
    next_report += PROGRESS_EVERY_S
    sent = 0
    for generated in events:
        if bucket is not None:
            bucket.take()
        topic = topics.get(generated.event_type)
        if topic is None:
            topic = topics[generated.event_type] = settings.topic_for(generated.event_type)
        producer.send_raw(topic, generated.key, generated.raw)
        sent += 1
        if progress is not None and sent % 256 == 0 and (now := clock()) >= next_report:
            progress(sent, now - started)
            next_report = now + PROGRESS_EVERY_S
    return sent
