"""`python -m stream native [build]`: build the mypyc-compiled core, or say whether it is in use."""

from __future__ import annotations

import argparse
from typing import Any

from stream.core import native


def cmd_native(args: argparse.Namespace) -> int:
    if args.action == "build":
        native.build()
    reason = native.why_not()
    if reason is None:
        modules = ", ".join(f"stream.core.{name}" for name in native.COMPILED)
        print(f"compiled: {modules} ({native.BUILD_DIR})")
    else:
        print(f"running as Python: {reason}")
    return 0 if reason is None or args.action == "status" else 1


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "native", help="build the mypyc-compiled core, or say whether it is in use"
    )
    parser.add_argument("action", nargs="?", choices=("status", "build"), default="status")
    parser.set_defaults(run=cmd_native)
