"""`python -m stream worker`: create the topics if needed, then run the Faust worker."""

from __future__ import annotations

import argparse
import secrets
import sys
from typing import Any

from stream.settings import get_settings


def cmd_worker(args: argparse.Namespace) -> int:
    from stream.ops.topics import ensure_topics
    from stream.worker.supervise import stop_with_supervisor, supervise

    settings = get_settings()
    if args.loglevel is not None:
        settings = settings.model_copy(update={"worker_loglevel": args.loglevel})
    level = settings.worker_loglevel
    if settings.worker_processes > 1:
        ensure_topics(settings)
        return supervise(settings, ["--loglevel", level, *args.faust_args])
    stop_with_supervisor()
    # The writer process first: its start (Feast's import and registry, seconds) then overlaps
    # the topics' check and Faust's, and a restarted worker serves sooner.
    from stream.sinks import writer

    pool = writer.start(settings)
    ensure_topics(settings)
    # Here, not above: the supervisor needs none of Faust.
    from stream.worker.app import build_app

    app = build_app(settings, writer_pool=pool)
    # Faust parses its own command line; hand it the worker command and our flags.
    # The CLI's own web flags win over the app's web_enabled: say it here too, or every worker
    # binds port 6066 and a second one on the machine dies.
    web = (
        ["--web-port", str(settings.worker_web_port)]
        if settings.worker_web_port
        else ["--without-web"]
    )
    sys.argv = [sys.argv[0], "worker", "--loglevel", level, *web, *args.faust_args]
    app.main()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from stream.cli.demo import run

    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    return run(get_settings(), users=args.users, seed=seed)


def register(commands: Any) -> None:
    worker = commands.add_parser(
        "worker",
        help="run a Faust worker, or AURORA_WORKER_PROCESSES of them (all share the partitions "
        "of one consumer group)",
    )
    worker.add_argument(
        "--loglevel",
        default=None,
        choices=["crit", "error", "warn", "info", "debug"],
        help="default: AURORA_WORKER_LOGLEVEL (info)",
    )
    worker.add_argument("faust_args", nargs=argparse.REMAINDER, help="passed on to `faust worker`")
    worker.set_defaults(run=cmd_worker)
    demo = commands.add_parser("demo", help="a day of traffic through a real worker, end to end")
    demo.add_argument("--users", type=int, default=2000)
    demo.add_argument(
        "--seed", type=int, default=None, help="generator seed (default: a new one each run)"
    )
    demo.set_defaults(run=cmd_demo)
