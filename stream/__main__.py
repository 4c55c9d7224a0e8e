"""`python -m stream COMMAND`: the entry point of every Aurora Features command."""

from __future__ import annotations

import argparse
import logging
import sys

from stream import cli_events, cli_feast, cli_replay, cli_status, cli_worker, native
from stream.settings import get_settings


def cmd_migrate(_: argparse.Namespace) -> int:
    from stream.migrate import MigrationError, load_migrations, migrate

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stream", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply the versioned SQL migrations").set_defaults(
        run=cmd_migrate
    )
    cli_feast.register(commands)
    cli_events.register(commands)
    cli_worker.register(commands)
    cli_replay.register(commands)
    cli_status.register(commands)
    native.register(commands)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # Client libraries narrate every connection at INFO; keep their warnings only.
    for noisy in ("kafka", "aiokafka", "feast"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
