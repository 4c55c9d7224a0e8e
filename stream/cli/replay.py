"""`python -m stream replay`: recompute feature history over a range (see stream/replay/run.py)."""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path
from typing import Any

from stream.settings import get_settings


def cmd_replay(args: argparse.Namespace) -> int:
    from stream import gcpolicy
    from stream.errors import ReplayError
    from stream.replay.run import replay, summary
    from stream.replay.sources import archive_source, jsonl_source, kafka_source
    from stream.replay.span import ReplayRange, default_range, parse_moment

    settings = get_settings()
    try:
        default = default_range()
        span = ReplayRange(
            parse_moment(args.start) if args.start else default.start,
            parse_moment(args.end) if args.end else default.end,
        )
        if args.source == "postgres":
            source: Any = partial(archive_source, settings, span)
            name = "postgres"
        elif args.source == "jsonl":
            if args.path is None:
                raise ReplayError("--source jsonl needs --path FILE")
            source = partial(jsonl_source, Path(args.path), span)
            name = f"jsonl:{Path(args.path).resolve()}"
        else:
            from_time = parse_moment(args.kafka_from_time) if args.kafka_from_time else None
            source = partial(
                kafka_source,
                settings,
                span,
                from_offset=args.kafka_from_offset,
                from_time=from_time,
            )
            name = f"kafka:{settings.topic_prefix}:{args.kafka_from_offset}:{args.kafka_from_time}"
        print(
            f"replaying {span.start.isoformat()} .. {span.end.isoformat()} from {args.source} "
            f"(reading from {span.read_from.isoformat()} so the windows start full)",
            file=sys.stderr,
        )
        gcpolicy.settle()
        report = replay(settings, span, source, name, online=args.online, fresh=args.fresh)
    except ReplayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to resume", file=sys.stderr)
        return 130
    print(summary(report))
    return 0


def register(commands: Any) -> None:
    replay = commands.add_parser(
        "replay",
        help="recompute features over a time range from the archive, a JSONL file or Kafka",
        description="Recompute feature snapshots over [--from, --to) with the worker's code and "
        "write them to the offline store idempotently (a rerun replaces its range).",
    )
    replay.add_argument("--from", dest="start", help="range start, ISO (default: 30 days ago)")
    replay.add_argument("--to", dest="end", help="range end, exclusive, ISO (default: now)")
    replay.add_argument("--source", choices=["postgres", "jsonl", "kafka"], default="postgres")
    replay.add_argument("--path", help="the JSONL file, for --source jsonl")
    replay.add_argument("--kafka-from-offset", type=int, help="Kafka: start at this offset")
    replay.add_argument("--kafka-from-time", help="Kafka: start at this (produce) time, ISO")
    replay.add_argument(
        "--online", action="store_true", help="also push each user's latest row online"
    )
    replay.add_argument(
        "--fresh", action="store_true", help="ignore a checkpoint left by an interrupted run"
    )
    replay.set_defaults(run=cmd_replay)
