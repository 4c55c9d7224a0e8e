"""`python -m stream migrate`, `status` (exit 1 when stale) and `quality`."""

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
