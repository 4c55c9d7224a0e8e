"""JSONL framing, the token bucket and the Kafka send loop, without a broker."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import orjson
import pytest

from stream.errors import JsonlFormatError
from stream.settings import Settings
from stream.synth.generator import GeneratorConfig, generate
from stream.synth.send import TokenBucket, WireRecord, read_jsonl, send_to_kafka, write_jsonl

CONFIG = GeneratorConfig(20, 3, 5, datetime(2024, 3, 4, tzinfo=UTC), 0.1, 0.1, 0.2)


def test_jsonl_round_trips_every_message_byte_for_byte() -> None:
    events = list(generate(CONFIG))
    out = io.BytesIO()
    assert write_jsonl(events, out) == len(events)
    lines = out.getvalue().splitlines(keepends=True)
    assert len(lines) == len(events)
    back = list(read_jsonl(lines))
    assert back == [WireRecord(g.event_type, g.key, g.raw, g.valid, g.duplicate) for g in events]
    framed = [orjson.loads(line) for line in lines]
    assert any("value_b64" in record for record in framed), "no non-UTF-8 message was framed"
    # Every line is a JSON object, even for truncated messages, and valid ones stay readable.
    assert all(isinstance(orjson.loads(r["value"]), dict) for r in framed if r["valid"])


def test_jsonl_errors_name_the_line() -> None:
    good = b'{"event_type":"sleep","key":"u1","valid":true,"duplicate":false,"value":"{}"}\n'
    with pytest.raises(JsonlFormatError, match="line 2"):
        list(read_jsonl([good, b"{not json}\n"]))
    with pytest.raises(JsonlFormatError, match="line 1"):
        list(read_jsonl([b'{"event_type":"sleep","key":"u1","valid":true,"duplicate":false}']))


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.now += seconds


def test_token_bucket_holds_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(500.0, clock=clock, sleep=clock.sleep)
    for _ in range(5_000):
        bucket.take()
    # The first burst (a tenth of a second's worth) is free; the rest runs at 500/s.
    assert clock.now - 100.0 == pytest.approx((5_000 - 50) / 500.0, rel=1e-6)


class FakeSender:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []

    def send_raw(self, topic: str, key: bytes | None, value: bytes) -> None:
        self.sent.append((topic, key, value))


def test_send_loop_routes_by_claimed_type_and_reports_progress() -> None:
    events = list(generate(CONFIG))
    sender = FakeSender()
    clock = FakeClock()
    reports: list[tuple[int, float]] = []
    settings = Settings(topic_prefix="demo")
    ticking = iter(range(10**9))

    def slow_clock() -> float:
        return float(next(ticking)) * 3  # three seconds pass between looks

    count = send_to_kafka(
        events, sender, settings, rate=0, progress=lambda n, s: reports.append((n, s)),
        clock=slow_clock,
    )  # fmt: skip
    assert count == len(events) == len(sender.sent)
    assert sender.sent == [(f"demo.{g.event_type}", g.key, g.raw) for g in events]
    assert reports and all(n % 256 == 0 for n, _ in reports)
    assert clock.now == 100.0
