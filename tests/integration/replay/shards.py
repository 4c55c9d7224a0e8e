"""A shard that replays slowly, in a process of its own, for the tests to kill mid-run."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from functools import partial

from stream.replay import run, sources
from stream.replay.run import replay
from stream.replay.shard import Shard
from stream.replay.sources import Chunk, SourceStats, archive_source
from stream.replay.span import ReplayRange
from stream.settings import Settings


def replay_slowly(
    settings: Settings, span: ReplayRange, shard: Shard, chunk_events: int, pause_s: float
) -> None:
    """`--shard K/N` as the CLI runs it, in small chunks with a pause after each."""
    # What the tests monkeypatch in process, set in this spawned one.
    sources.CHUNK_EVENTS = chunk_events  # type: ignore[misc]  # Final for the code, not here
    run.CHECKPOINT_EVERY_S = 0.0  # a checkpoint after each chunk, for the test to watch
    archive = partial(archive_source, settings, span, shard=shard)

    def slow(stats: SourceStats) -> Iterator[Chunk]:
        for chunk in archive(stats):
            yield chunk
            time.sleep(pause_s)

    replay(settings, span, slow, "postgres", shard=shard, progress_out=io.StringIO())
