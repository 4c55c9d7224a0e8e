"""Fuzzed hostile input through the worker's Ingestor: each bad message is one dead letter with
its reason and original bytes, and the valid events around it give exactly the rows they give
alone."""

from __future__ import annotations

import base64
import random
from datetime import UTC, datetime, timedelta

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.core.events import Event
from stream.core.ingest import Ingestor
from stream.core.records import Message
from stream.synth.generator import GeneratorConfig, generate
from tests.hostile import hostile

VALID: list[Event] = [
    g.event
    for g in generate(
        GeneratorConfig(
            users=6,
            days=2,
            seed=11,
            start=datetime.now(UTC).replace(microsecond=0) - timedelta(days=3),
        )
    )
    if g.valid and g.event is not None
]
TOPIC = "fuzz.events"  # one topic for all types: the type check is exercised elsewhere


def ingestor() -> Ingestor:
    made, _ = Ingestor.in_memory()
    made.max_ahead_s = 86_400.0
    return made


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(hostile(VALID), min_size=1, max_size=6), st.randoms(use_true_random=False))
def test_hostile_messages_are_dead_letters_and_valid_neighbours_are_untouched(
    bad: list[bytes], rng: random.Random
) -> None:
    good = [orjson.dumps(e) for e in VALID[:40]]
    slots = sorted(rng.sample(range(len(good) + len(bad)), len(bad)))
    stream: list[tuple[bytes, bool]] = [(raw, True) for raw in good]
    for slot, raw in zip(slots, bad, strict=True):
        stream.insert(slot, (raw, False))
    messages = [Message(TOPIC, 0, offset, None, raw) for offset, (raw, _) in enumerate(stream)]

    result = ingestor().process(messages)

    bad_offsets = [offset for offset, (_, ok) in enumerate(stream) if not ok]
    assert [m.offset for m, _ in result.dead_letters] == bad_offsets
    for message, record in result.dead_letters:
        letter = orjson.loads(record)
        assert letter["error"]["rule"] and letter["error"]["field"]
        assert base64.b64decode(letter["value_b64"]) == message.value
        assert letter["source"] == {"topic": TOPIC, "partition": 0, "offset": message.offset}
    alone = ingestor().process(
        Message(TOPIC, 0, offset, None, raw) for offset, (raw, ok) in enumerate(stream) if ok
    )
    assert result.rows == alone.rows
    assert result.archive == alone.archive
