"""The worker's writes, in a process of their own.

The event loop (consuming, aggregating, the changelog) and the writes (Feast's row conversion,
Redis, Postgres) each keep a core busy; in one process they would take turns on the GIL. So the
worker hands each flush to one writer process, which holds the sinks and retries while Redis or
Postgres is away. One process, not several: each user's rows then reach the stores in row-time
order. A failure that retries cannot cure is raised to the worker, which stops before Faust can
commit the offsets of unwritten events.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING, Any

import orjson

from stream import gcpolicy
from stream.ingest import ArchiveRow
from stream.settings import Settings
from stream.state import Row

if TYPE_CHECKING:
    from stream.sinks import ArchiveSink, FeatureSink

logger = logging.getLogger(__name__)

LEVELS = {
    "crit": logging.CRITICAL,
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
}

_settings: Settings | None = None
_sinks: tuple[ArchiveSink, FeatureSink] | None = None


def start(settings: Settings) -> ProcessPoolExecutor:
    """The writer process. Spawned, not forked: the worker's event loop and sockets stay home."""
    # Feast is imported and the store opened before the first batch arrives.
    return spawn_one(_init, (settings, LEVELS[settings.worker_loglevel]), warm_up)


def spawn_one(
    initializer: Callable[..., None], initargs: tuple[Any, ...], warm_up: Callable[[], Any]
) -> ProcessPoolExecutor:
    """A pool of one spawned process, started at once: `warm_up` runs there while the caller
    goes on, so the initializer's slow imports overlap the caller's first work."""
    pool = ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=initializer,
        initargs=initargs,
    )
    pool.submit(warm_up)
    return pool


def exit_with_parent() -> None:
    """Exit once the parent is gone: it ignores SIGTERM, so a worker that died without shutting
    it down (SIGKILL, a fatal exit) would otherwise leave it running forever, connections open.
    Its write in flight is rolled back; the events were never acknowledged, so they come again.
    """
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _init(settings: Settings, level: int) -> None:
    global _settings
    exit_with_parent()
    _settings = settings
    # The writer shares the worker's process group, so a Ctrl-C or a SIGTERM to the group
    # reaches it too; it must live on until the worker has flushed and shut it down itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(
        level=level, format="[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"
    )


def _open() -> tuple[ArchiveSink, FeatureSink]:
    global _sinks
    if _sinks is None:
        from stream.feast_env import open_store
        from stream.sinks import ArchiveSink, FeatureSink

        assert _settings is not None, "the writer process was not initialised"
        _sinks = (
            ArchiveSink(_settings.postgres_conninfo(), _settings.postgres_schema),
            FeatureSink(open_store(_settings)),
        )
        gcpolicy.settle()
    return _sinks


def warm_up() -> None:
    _open()


def pack(archive: Sequence[ArchiveRow], rows: Sequence[Row]) -> bytes:
    """A flush as the bytes the writer process receives.

    orjson, not pickle: multiprocessing pickled each Row dataclass through Python code on the
    worker's GIL (its queue feeder thread took a seventh of the samples).
    """
    # orjson writes the rows, slotted dataclasses, natively.
    return orjson.dumps([rows, archive])


def unpack(payload: bytes) -> tuple[list[ArchiveRow], list[Row]]:
    rows, archive = orjson.loads(payload)
    return archive, [Row(r["view"], r["user_id"], r["row_us"], r["values"]) for r in rows]


def write(payload: bytes) -> tuple[int, dict[str, int]]:
    """The rows through the push sources, then the raw events to the archive; both retried.

    Online goes first because it is what freshness measures; nothing is acknowledged before
    all of it is written, so the order costs no safety. Returns how many attempts were retried
    and the newest row time written per view (the freshness metric).
    """
    from stream.sinks import with_retry

    archive, rows = unpack(payload)
    retries = 0

    def count() -> None:
        nonlocal retries
        retries += 1

    archive_sink, feature_sink = _open()
    with_retry(lambda: feature_sink.write(rows), "feature push", on_retry=count)
    with_retry(lambda: archive_sink.write(archive), "archive write", on_retry=count)
    newest: dict[str, int] = {}
    for row in rows:
        if row.row_us > newest.get(row.view, 0):
            newest[row.view] = row.row_us
    return retries, newest
