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
    from stream.errors import ConfigError, ReplayError
    from stream.replay.parallel import replay_sharded
    from stream.replay.run import replay, summary
    from stream.replay.shard import Shard
    from stream.replay.sources import archive_source, jsonl_source, kafka_source
    from stream.replay.span import ReplayRange, default_range, parse_moment

    settings = get_settings()
    try:
        default = default_range()
        span = ReplayRange(
            parse_moment(args.start) if args.start else default.start,
            parse_moment(args.end) if args.end else default.end,
        )
        shard = Shard.parse(args.shard) if args.shard else None
        if args.processes < 1:
            raise ConfigError(f"--processes {args.processes}: needs at least 1")
        if (shard is not None or args.processes > 1) and args.source != "postgres":
            raise ReplayError("--shard and --processes split the archive: use --source postgres")
        if shard is not None and args.processes > 1:
            raise ReplayError("--shard runs one shard; --processes runs all of them: pick one")
        if args.source == "postgres":
            source: Any = partial(archive_source, settings, span, shard=shard)
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
        split = f", shard {shard}" if shard else ""
        if args.processes > 1:
            split = f", {args.processes} shards in parallel"
        print(
            f"replaying {span.start.isoformat()} .. {span.end.isoformat()} from {args.source}"
            f"{split} (reading from {span.read_from.isoformat()} so the windows start full)",
            file=sys.stderr,
        )
        gcpolicy.settle()
        if args.processes > 1:
            report = replay_sharded(
                settings, span, args.processes, online=args.online, fresh=args.fresh
            )
        else:
            report = replay(
                settings, span, source, name, online=args.online, fresh=args.fresh, shard=shard
            )
    except (ReplayError, ConfigError) as exc:
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
    replay.add_argument(
        "--processes",
        type=int,
        default=1,
        metavar="N",
        help="split the users into N shards and replay them in parallel on this machine",
    )
    replay.add_argument(
        "--shard",
        metavar="K/N",
        help="replay shard K (0..N-1) of N alone, so N jobs split one backfill: the users whose "
        "stable hash (stream/replay/shard.py) modulo N is K",
    )
    replay.set_defaults(run=cmd_replay)
