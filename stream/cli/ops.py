"""`python -m stream migrate`, `partitions`, `status` (exit 1 when stale), `quality` and
`redis-acl`."""

from __future__ import annotations

import argparse
import os
import shlex
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


def cmd_redis_acl(args: argparse.Namespace) -> int:
    from stream.errors import ConfigError
    from stream.ops.redis_acl import ROLES, setuser_command

    settings = get_settings()
    users = {"ingestor": args.ingestor_user, "reader": args.reader_user}
    if not args.apply:
        for role in ROLES:
            line = setuser_command(users[role], role, settings.feast_project, "PASSWORD")
            print(shlex.join(line[:-1]), f"'>{role.upper()}_PASSWORD'")
        return 0
    from stream.redis_client import connect, where

    client = connect(settings)
    try:
        for role in ROLES:
            variable = f"AURORA_REDIS_ACL_{role.upper()}_PASSWORD"
            password = os.environ.get(variable, "")
            if not password:
                raise ConfigError(f"--apply takes the {role}'s password from {variable}")
            command = setuser_command(users[role], role, settings.feast_project, password)
            client.execute_command(*command)  # type: ignore[no-untyped-call]  # redis-py's
            print(f"{users[role]}: {role} of project {settings.feast_project} on {where(settings)}")
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    return 0


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
    acl = commands.add_parser(
        "redis-acl",
        help="the Redis ACL users of the online store: print their ACL SETUSER lines, or --apply",
        description="The ingestor may write the Feast project's keys, the reader only read them "
        "(stream/ops/redis_acl.py). --apply sets them on AURORA_REDIS_URL's Redis (as a user "
        "allowed ACL SETUSER), with passwords from AURORA_REDIS_ACL_INGESTOR_PASSWORD and "
        "AURORA_REDIS_ACL_READER_PASSWORD.",
    )
    acl.add_argument("--ingestor-user", default="aurora-ingestor")
    acl.add_argument("--reader-user", default="aurora-reader")
    acl.add_argument("--apply", action="store_true", help="set the users, not just print them")
    acl.set_defaults(run=cmd_redis_acl)
