"""The writer process: the sinks in a process of their own, for the worker and for replay.

The event loop (consuming, aggregating, the changelog) and the writes (row conversion, Redis,
Postgres) each keep a core busy; in one process they would take turns on the GIL
(docs/decisions/0003-writer-process.md). So each flush goes, packed, to one writer process,
which writes it through its sinks in order (online, offline, archive), each write retried while
its store is away. One process, not several: each user's rows reach the stores in row-time
order. A failure that retries cannot cure is raised to the caller, which must not acknowledge
the flush's events.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from typing import Final

import orjson

from stream import gcpolicy
from stream.core.records import Row
from stream.settings import Settings
from stream.sinks.base import Flush, Replace, Sink, with_retry

logger = logging.getLogger(__name__)

LEVELS: Final = {
    "crit": logging.CRITICAL,
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
}
# The sinks a writer can hold, in the order a flush is written: online first, because it is
# what freshness measures; nothing is acknowledged before all of it is written.
SINKS: Final = ("online", "offline", "archive")

_settings: Settings | None = None
_wanted: tuple[str, ...] = SINKS
_agreed: list[str] | None = None
_sinks: OpenSinks | None = None


def start(
    settings: Settings, sinks: Sequence[str] = SINKS, agreed: list[str] | None = None
) -> ProcessPoolExecutor:
    """The writer process, holding `sinks`. Spawned, not forked: the caller's event loop and
    sockets stay home. Feast is imported and the store opened before the first flush arrives,
    while the caller goes on with its own start. `agreed`: the verdict of `agreement.check` for
    every store the repository lets the writer write without Feast (`registry_verdict`), when
    the caller made it already (a sharded replay checks once for all its writers); None, and
    the writer checks."""
    unknown = set(sinks) - set(SINKS)
    if unknown:
        raise ValueError(f"no sinks {sorted(unknown)}; the writer has {list(SINKS)}")
    pool = ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init,
        initargs=(settings, LEVELS[settings.worker_loglevel], tuple(sinks), os.getpid(), agreed),
    )
    pool.submit(_warm_up)
    return pool


def registry_verdict(settings: Settings, sinks: Sequence[str] = SINKS) -> list[str] | None:
    """`agreement.check` for the stores a writer holding `sinks` would write without Feast, as
    its `OpenSinks` makes it (so that both find the same kept verdict); None when there are none
    (every write goes through Feast)."""
    from stream.featurestore import agreement

    quick, snapshots = feast_free(settings, sinks)
    if not (quick or snapshots):
        return None
    return agreement.check(settings, online=quick, offline=snapshots)


def feast_free(settings: Settings, sinks: Sequence[str]) -> tuple[bool, bool]:
    """Whether a writer holding `sinks` writes Redis, and the snapshot tables, without Feast:
    the repository's stores are the ones the catalog's own sinks write."""
    from stream.sinks.redis_rows import plain_redis
    from stream.sinks.snapshots import plain_postgres

    quick = "online" in sinks and plain_redis(settings.feast_repo_path, settings.redis.cluster)
    return quick, "offline" in sinks and plain_postgres(settings.feast_repo_path)


def _warm_up() -> None:
    """Open the sinks ahead of the first flush. Returns nothing: the open sinks stay in this
    process (a submitted `_open` would send them back, and they do not pickle)."""
    _open()


def exit_with_parent(parent: int | None = None) -> None:
    """Exit once the parent is gone: it ignores SIGTERM, so a parent that died without shutting
    it down (SIGKILL, a fatal exit) would otherwise leave it running forever, connections open.
    Its write in flight is rolled back; the events were never acknowledged, so they come again.
    `parent` is the pid that started this process: one that died while this process was still
    starting has left it to init already, which `os.getppid()` alone would take for the parent.
    """
    if parent is None:
        parent = os.getppid()
    elif os.getppid() != parent:
        os._exit(0)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _init(
    settings: Settings,
    level: int,
    sinks: tuple[str, ...],
    parent: int,
    agreed: list[str] | None = None,
) -> None:
    global _settings, _wanted, _agreed
    exit_with_parent(parent)
    _settings, _wanted, _agreed = settings, sinks, agreed
    # The writer shares its parent's process group, so a Ctrl-C or a SIGTERM to the group
    # reaches it too; it must live on until the parent has flushed and shut it down itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(
        level=level, format="[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"
    )


def open_sinks(settings: Settings, names: Sequence[str]) -> list[Sink]:
    """The named sinks through Feast, set up, in the order a flush is written."""
    from stream.featurestore.env import open_store
    from stream.sinks.archive import ArchiveSink
    from stream.sinks.offline import OfflineSink
    from stream.sinks.online import OnlineSink

    conninfo, schema = settings.postgres_conninfo(), settings.postgres_schema
    sinks: list[Sink] = []
    if "online" in names or "offline" in names:
        store = open_store(settings)
        if "online" in names:
            sinks.append(OnlineSink(store))
        if "offline" in names:
            sinks.append(OfflineSink(store, conninfo, schema))
    if "archive" in names:
        sinks.append(ArchiveSink(conninfo, schema))
    for sink in sinks:
        with_retry(sink.setup, f"{sink.name} set-up")
    return sinks


class OpenSinks:
    """The writer process's sinks, opened so that the first flush is online soon, and without
    Feast where the repository's stores let the catalog write them.

    Importing Feast takes seconds and ~140 MiB. Where the repository's online store is a plain
    Redis one, the online sink starts without it (stream/sinks/redis_rows.py); where its offline
    store is this project's Postgres one, so does the offline sink (stream/sinks/snapshots.py),
    once a child process has found the registry's views to be the catalog's
    (stream/featurestore/agreement.py). Should they differ, Feast's own sinks take over and are
    imported here. A restarted worker's first rows are online before the check is done; its
    offline writes wait for it.
    """

    def __init__(
        self, settings: Settings, names: Sequence[str], agreed: list[str] | None = None
    ) -> None:
        from stream.sinks.redis_rows import RedisOnlineSink

        self.ready: dict[str, Sink] = {}
        self.error: BaseException | None = None
        quick, snapshots = feast_free(settings, names)
        if quick:
            online = RedisOnlineSink(settings)
            with_retry(online.setup, "online set-up")
            self.ready["online"] = online
        self._opening = threading.Thread(
            target=self._open,
            args=(settings, list(names), quick, snapshots, agreed),
            name="open-sinks",
            daemon=True,
        )
        self._opening.start()

    def _open(
        self,
        settings: Settings,
        names: list[str],
        quick: bool,
        snapshots: bool,
        agreed: list[str] | None,
    ) -> None:
        from stream.featurestore import agreement
        from stream.ops import partitions
        from stream.sinks.archive import ArchiveSink
        from stream.sinks.snapshots import SnapshotSink

        try:
            if "archive" in names:
                # The worker's writer (replay's has no archive sink) keeps the days ahead made.
                partitions.keep_up(settings)
                archive = ArchiveSink(settings.postgres_conninfo(), settings.postgres_schema)
                with_retry(archive.setup, "archive set-up")
                self.ready["archive"] = archive
            # A verdict made beforehand covers both stores: a difference in either sends this
            # writer to Feast's sinks, as its own check would for the stores it holds, or more.
            found = (
                agreed
                if agreed is not None
                else agreement.check(settings, online=quick, offline=snapshots)
            )
            for line in found:
                logger.warning("the registry is not the catalog (%s): Feast's writes on", line)
            rest = [n for n in names if n not in self.ready or (found and n == "online")]
            if snapshots and not found:
                offline = SnapshotSink(settings)
                with_retry(offline.setup, "offline set-up")
                self.ready["offline"] = offline
                rest.remove("offline")
            if rest:
                for sink in open_sinks(settings, rest):
                    self.ready[sink.name] = sink
            gcpolicy.settle()
        except BaseException as exc:  # raised to the flush that needs the sink
            self.error = exc

    def get(self, name: str) -> Sink:
        sink = self.ready.get(name)
        if sink is None:
            self._opening.join()
            if self.error is not None:
                raise self.error
            sink = self.ready[name]
        return sink


def _open() -> OpenSinks:
    global _sinks
    if _sinks is None:
        assert _settings is not None, "the writer process was not initialised"
        _sinks = OpenSinks(_settings, _wanted, _agreed)
    return _sinks


def pack(flush: Flush) -> bytes:
    """A flush as the bytes the writer process receives.

    orjson, not pickle: multiprocessing pickled each Row through Python code on the caller's
    GIL (its queue feeder thread took a seventh of the worker's samples). The rows go as four
    columns, not as objects: orjson reads a compiled Row's fields one lookup at a time, and
    the writer makes a Row of each column's items in one `map`; 0.96 against 1.46 us a row here,
    2.3 against 4.4 there (docs/decisions/0027-replay-per-event-costs.md).
    """
    rows = flush.rows
    columns = [
        [r.view for r in rows],
        [r.user_id for r in rows],
        [r.row_us for r in rows],
        [r.values for r in rows],
    ]
    return orjson.dumps([columns, flush.archive, flush.online, flush.offline, flush.replace])


def unpack(payload: bytes) -> Flush:
    (views, users, times, values), archive, online, offline, replace = orjson.loads(payload)
    return Flush(
        list(map(Row, views, users, times, values)),
        archive,
        online,
        offline,
        None if replace is None else Replace(**replace),
    )


def write(payload: bytes) -> tuple[int, dict[str, int]]:
    """Write a packed flush through every sink this process holds, each retried.

    Returns how many attempts were retried and the newest row time written per view (the
    freshness metric).
    """
    flush = unpack(payload)
    retries = 0

    def count() -> None:
        nonlocal retries
        retries += 1

    sinks = _open()
    for name in (n for n in SINKS if n in _wanted):
        sink = sinks.get(name)
        with_retry(partial(sink.write, flush), f"{sink.name} write", on_retry=count)
    newest: dict[str, int] = {}
    for row in flush.rows:
        if row.row_us > newest.get(row.view, 0):
            newest[row.view] = row.row_us
    return retries, newest
