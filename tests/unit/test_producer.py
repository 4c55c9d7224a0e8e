"""The producer's codec is one the worker's consumer reads, and the cheapest to read."""

from __future__ import annotations

from datetime import UTC, datetime

from aiokafka import codec as consumer_codec
from kafka import codec as producer_codec

from stream.producer import pick_compression
from stream.synth.generator import GeneratorConfig, generate


def test_the_producer_picks_lz4_which_the_worker_decompresses() -> None:
    # lz4 and cramjam are dependencies; without either, the producer falls back to gzip and the
    # worker pays 4.6% of its thread for it (stream/producer.py).
    assert pick_compression() == "lz4"
    config = GeneratorConfig(users=20, days=1, seed=3, start=datetime(2026, 1, 5, tzinfo=UTC))
    batch = b"".join(g.raw for g in generate(config))
    assert consumer_codec.lz4_decode(producer_codec.lz4_encode(batch)) == batch
