"""`python -m stream topics` and `generate`: create the topics, produce synthetic streams."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stream.errors import GeneratorConfigError
from stream.settings import get_settings
from stream.synth.generator import GeneratedEvent, GeneratorConfig, default_start, generate
from stream.synth.send import send_to_kafka, write_jsonl


def cmd_topics(_: argparse.Namespace) -> int:
    from stream.ops.topics import ensure_topics, topic_names

    settings = get_settings()
    created = ensure_topics(settings)
    found = [name for name in topic_names(settings) if name not in created]
    print(f"topics created: {', '.join(created) or 'none'}")
    print(f"topics already there: {', '.join(found) or 'none'}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    try:
        start = _aware(args.start) if args.start else default_start(datetime.now(UTC), args.days)
        config = GeneratorConfig(
            users=args.users,
            days=args.days,
            seed=args.seed,
            start=start,
            out_of_order=args.out_of_order,
            duplicates=args.duplicates,
            invalid=args.invalid,
        )
    except (GeneratorConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    tally: Counter[str] = Counter()
    began = time.monotonic()
    events = _counted(generate(config), tally)
    if args.kafka:
        count = _to_kafka(events, args.rate)
    elif args.out:
        with Path(args.out).open("wb") as out:
            count = write_jsonl(events, out)
    else:
        try:
            count = write_jsonl(events, sys.stdout.buffer)
        except BrokenPipeError:
            # The reader (head, a pager) stopped early: not a failure. Point stdout at devnull so
            # the interpreter's final flush does not raise again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
    elapsed = time.monotonic() - began
    print(
        f"generated {count} events from {config.start.isoformat()} over {config.days} days "
        f"({tally['valid']} valid, {tally['duplicate']} duplicates, {tally['invalid']} invalid) "
        f"in {elapsed:.1f}s ({count / max(elapsed, 1e-9):,.0f} events/s)",
        file=sys.stderr,
    )
    return 0


def _counted(events: Iterable[GeneratedEvent], tally: Counter[str]) -> Iterator[GeneratedEvent]:
    for generated in events:
        if not generated.valid:
            tally["invalid"] += 1
        elif generated.duplicate:
            tally["duplicate"] += 1
        else:
            tally["valid"] += 1
        yield generated


def _to_kafka(events: Iterable[GeneratedEvent], rate: float) -> int:
    from stream.ops.topics import ensure_topics
    from stream.producer import EventProducer

    settings = get_settings()
    ensure_topics(settings)

    def progress(sent: int, elapsed: float) -> None:
        print(f"sent {sent} events ({sent / elapsed:,.0f}/s)", file=sys.stderr)

    with EventProducer(settings) as producer:
        return send_to_kafka(events, producer, settings, rate, progress)


def _aware(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"--start {text!r} needs a UTC offset, such as Z or +01:00")
    return moment


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a fraction in [0, 1]")
    return value


def register(commands: Any) -> None:
    commands.add_parser(
        "topics", help="create the event and dead-letter topics that are missing"
    ).set_defaults(run=cmd_topics)
    gen = commands.add_parser(
        "generate",
        help="a deterministic synthetic event stream, to JSONL (default: stdout) or Kafka",
        description="Framing of the JSONL output: see stream/synth/send.py.",
    )
    gen.add_argument("--users", type=int, default=100)
    gen.add_argument("--days", type=int, default=7)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument(
        "--start", help="ISO 8601 date-time with an offset (default: this hour less --days)"
    )
    where = gen.add_mutually_exclusive_group()
    where.add_argument("--out", help="the JSONL file to write")
    where.add_argument("--kafka", action="store_true", help="send to the settings' topics")
    gen.add_argument("--rate", type=float, default=0.0, help="events/s to Kafka; 0: flat out")
    gen.add_argument("--out-of-order", type=_fraction, default=0.0, metavar="F")
    gen.add_argument("--duplicates", type=_fraction, default=0.0, metavar="F")
    gen.add_argument("--invalid", type=_fraction, default=0.0, metavar="F")
    gen.set_defaults(run=cmd_generate)
