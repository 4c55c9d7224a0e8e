"""`make replay --processes N`: the shards of one backfill as processes on one machine.

Each shard is the same `replay` a `--shard K/N` job runs (stream/replay/run.py), in a process of
its own with its own writer process, checkpoint and archive query; this module only starts
them and shows one progress display for the whole. Invariant: the shards' users are disjoint
and cover everyone (stream/replay/shard.py), so their union is the unsharded replay's output,
and a shard interrupted here resumes with the same command or alone with `--shard K/N`.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import sys
import time
from dataclasses import dataclass, fields
from functools import partial
from multiprocessing.process import BaseProcess
from typing import IO, Any

from stream.errors import ReplayError
from stream.replay.run import ReplayReport, replay, replay_sinks
from stream.replay.shard import Shard, split
from stream.replay.sources import archive_count, archive_source
from stream.replay.span import ReplayRange
from stream.settings import Settings

# What a shard process says on the queue: (kind, shard index, value).
Message = tuple[str, int, Any]


@dataclass
class QueueMeter:
    """A shard's progress, sent to the parent's display instead of drawn; the parent knows the
    total (it counted the range once for all shards)."""

    queue: Any  # a multiprocessing queue (its class is not importable for typing)
    index: int
    total: int | None

    def update(self, n: int, force: bool = False) -> None:
        if n:
            self.queue.put(("done", self.index, n))

    def close(self) -> None:
        """Nothing to draw: the parent's display closes once every shard has reported."""


def run_shard(
    settings: Settings,
    span: ReplayRange,
    shard: Shard,
    online: bool,
    fresh: bool,
    messages: Any,
    parent: int,
    agreed: list[str] | None,
) -> None:
    """One shard's replay from the archive, in a process of its own (the entry point)."""
    from stream import gcpolicy
    from stream.sinks.writer import exit_with_parent

    # A parent killed outright must not leave shards writing behind it; what a shard wrote is
    # checkpointed, so the same command resumes.
    exit_with_parent(parent)
    gcpolicy.settle()
    try:
        report = replay(
            settings,
            span,
            # The parent counts the range once for all shards: no shard's count to hash its way.
            partial(archive_source, settings, span, shard=shard, count=False),
            "postgres",
            online=online,
            fresh=fresh,
            shard=shard,
            meter=partial(QueueMeter, messages, shard.index),
            agreed=agreed,
        )
    except KeyboardInterrupt:
        messages.put(("interrupted", shard.index, None))
        sys.exit(130)
    except BaseException as exc:
        messages.put(("error", shard.index, f"{type(exc).__name__}: {exc}"))
        sys.exit(1)
    messages.put(("report", shard.index, report))


def combine(reports: list[ReplayReport], seconds: float) -> ReplayReport:
    """The whole run's report: the shards' counts added up, the wall time of the whole."""
    whole = ReplayReport()
    for report in reports:
        for f in fields(ReplayReport):
            if f.name != "seconds":
                setattr(whole, f.name, getattr(whole, f.name) + getattr(report, f.name))
    whole.seconds = seconds
    return whole


def replay_sharded(
    settings: Settings,
    span: ReplayRange,
    processes: int,
    *,
    online: bool = False,
    fresh: bool = False,
    progress_out: IO[str] = sys.stderr,
) -> ReplayReport:
    """Replay [start, end) from the archive as `processes` shards at once; one report."""
    from stream.replay.progress import Progress
    from stream.sinks.writer import registry_verdict

    began = time.monotonic()
    # Once for every shard's writer: each check imports Feast in a process of its own, seconds
    # of a core that N shards would otherwise each spend at their start.
    agreed = registry_verdict(settings, replay_sinks(online))
    total = archive_count(settings, span)
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    shards = split(processes)
    # Not daemons: each shard starts a writer process of its own, which daemons may not.
    started: list[BaseProcess] = [
        context.Process(
            target=run_shard,
            args=(settings, span, shard, online, fresh, messages, os.getpid(), agreed),
            name=f"replay-shard-{shard}",
        )
        for shard in shards
    ]
    for process in started:
        process.start()
    progress = Progress(total, progress_out, label=f"replay, {processes} shards,")
    reports: dict[int, ReplayReport] = {}
    failed: dict[int, str] = {}

    def handle(message: Message) -> None:
        kind, index, value = message
        if kind == "done":
            progress.update(value)
        elif kind == "report":
            reports[index] = value
            progress.note = f" ({len(reports)}/{processes} shards done)"
        else:
            failed[index] = "interrupted" if kind == "interrupted" else str(value)

    try:
        while any(p.is_alive() for p in started):
            with contextlib.suppress(queue.Empty):
                handle(messages.get(timeout=0.5))
        for process in started:
            process.join()
        # What the shards sent before they exited; their queues are flushed once they have.
        with contextlib.suppress(queue.Empty):
            while True:
                handle(messages.get(timeout=0.2))
    except KeyboardInterrupt:
        # The shards got the same Ctrl-C: they checkpoint what they wrote and exit.
        for process in started:
            process.join(timeout=60)
        raise
    progress.close()
    for shard, process in zip(shards, started, strict=True):
        if shard.index not in reports and shard.index not in failed:
            failed[shard.index] = f"exited with code {process.exitcode}"
    if failed:
        if all(reason == "interrupted" for reason in failed.values()):
            raise KeyboardInterrupt
        detail = "; ".join(f"shard {k}/{processes}: {why}" for k, why in sorted(failed.items()))
        raise ReplayError(
            f"{detail}. The other shards finished; rerun each failed one alone with --shard K/N "
            "to resume it from its checkpoint (the same command resumes them too, but replays "
            "the finished shards again)"
        )
    return combine([reports[k] for k in sorted(reports)], time.monotonic() - began)
