"""`python -m stream COMMAND`: every command, one module per group, each a thin shell over a
library function."""

from __future__ import annotations

import argparse
import logging

from stream.cli import events, feast, native, ops, replay, worker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stream", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for group in (ops, feast, events, worker, replay, native):
        group.register(commands)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # Client libraries narrate every connection at INFO; keep their warnings only.
    for noisy in ("kafka", "aiokafka", "feast"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    code: int = args.run(args)
    return code
