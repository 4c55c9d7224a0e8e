"""`python -m stream migrate`, `partitions`, `status` (exit 1 when stale) and `quality`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from stream.settings import get_settings


def cmd_migrate(_: argparse.Namespace) -> int:
    from stream.errors import MigrationError
    from stream.ops.migrate import load_migrations, migrate

    settings = get_settings()
    try:
        applied = migrate(
            settings.postgres_conninfo(), load_migrations(), schema=settings.postgres_schema
        )
    except MigrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"migrations: {len(applied)} applied" + (f" ({applied})" if applied else ", up to date"))
    # The days ahead exist before a worker starts; a role that may not make them says so here.
    return _partitions(settings, dry_run=False, quiet=True)


def cmd_partitions(args: argparse.Namespace) -> int:
    return _partitions(get_settings(), dry_run=args.dry_run, quiet=False)


def _partitions(settings: Any, dry_run: bool, quiet: bool) -> int:
    from stream.errors import PartitionError
    from stream.ops.partition_plan import partition_name
    from stream.ops.partitions import connect, maintain, storage

    try:
        plans = maintain(settings, dry_run=dry_run)
        with connect(settings) as conn:
            tables = [storage(conn, table) for table in plans]
    except PartitionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    verb = ("would make", "would drop") if dry_run else ("made", "dropped")
    for table, todo in plans.items():
        if todo.create:
            names = [partition_name(table, d) for d in todo.create]
            print(f"{table}: {verb[0]} {len(names)}: {names[0]} .. {names[-1]}")
        if todo.drop:
            print(f"{table}: {verb[1]} {', '.join(p.name for p in todo.drop)}")
    if quiet:
        print(f"partitions: {sum(len(p.create) for p in plans.values())} made")
        return 0
    from stream.ops.status import storage_lines

    print("\n".join(storage_lines(tables)))
    return 0


def cmd_status(_: argparse.Namespace) -> int:
    from stream.ops.status import main

    return main(get_settings())


def cmd_quality(args: argparse.Namespace) -> int:
    from stream.ops.quality import main

    return main(get_settings(), args.days, args.out)


def register(commands: Any) -> None:
    commands.add_parser("migrate", help="apply the versioned SQL migrations").set_defaults(
        run=cmd_migrate
    )
    partitions = commands.add_parser(
        "partitions",
        help="make the archive's and snapshots' day partitions ahead, drop the expired ones",
        description="Makes AURORA_PARTITION_DAYS_AHEAD days ahead, moves rows the DEFAULT "
        "partitions caught into their days, drops days older than AURORA_ARCHIVE_RETENTION_DAYS "
        "and AURORA_SNAPSHOT_RETENTION_DAYS. Run it as the tables' owner.",
    )
    partitions.add_argument("--dry-run", action="store_true", help="say what it would do")
    partitions.set_defaults(run=cmd_partitions)
    commands.add_parser(
        "status",
        help="per view: freshness, rows online and offline; per topic: lag; the DLQ size",
        description="Exits 1 when a feature view's freshness exceeds its TTL (a health check).",
    ).set_defaults(run=cmd_status)
    quality = commands.add_parser(
        "quality",
        help="data quality report of the offline snapshots (missing, range, outliers, drift)",
    )
    quality.add_argument("--days", type=int, default=7, help="the period, against the one before")
    quality.add_argument("--out", type=Path, default=Path("quality.html"), help="the HTML file")
    quality.set_defaults(run=cmd_quality)
