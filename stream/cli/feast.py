"""`python -m stream feast ...` and `feast-env`: Feast's CLI with the settings applied."""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from typing import Any

from stream.featurestore.env import feast_environment
from stream.settings import get_settings


def cmd_feast(args: argparse.Namespace) -> int:
    settings = get_settings()
    env = {**os.environ, **feast_environment(settings)}
    # Feast's own CLI, with permissions read through the registry's cache (feast_cli.py).
    cli = "stream.featurestore.feast_cli"
    argv = [sys.executable, "-m", cli, "-c", str(settings.feast_repo_path), *args.rest]
    return subprocess.run(argv, env=env, check=False).returncode


def cmd_feast_env(_: argparse.Namespace) -> int:
    for key, value in feast_environment(get_settings()).items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


def cmd_docs(_: argparse.Namespace) -> int:
    from stream.ops.catalog_docs import CATALOG_PAGE, write_docs

    changed = write_docs()
    print(f"{CATALOG_PAGE.name}: {'rewritten' if changed else 'up to date'}")
    return 0


def register(commands: Any) -> None:
    feast = commands.add_parser(
        "feast",
        help="run Feast's CLI on the feature repository, configured from the settings",
        description="Everything after `feast` goes to Feast: `python -m stream feast apply`.",
    )
    feast.add_argument("rest", nargs=argparse.REMAINDER)
    feast.set_defaults(run=cmd_feast)
    commands.add_parser(
        "feast-env", help="print the variables feature_store.yaml reads, as shell exports"
    ).set_defaults(run=cmd_feast_env)
    commands.add_parser(
        "docs", help="render the feature catalog into docs/catalog.md"
    ).set_defaults(run=cmd_docs)
