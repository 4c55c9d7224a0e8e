"""The Faust app: the event topics, the user-state table and its changelog, the timers.

The event topics are subscribed without Faust agents or streams: the consumer hands their
records to the runtime a fetch at a time (docs/decisions/0001-batches-without-agents.md).
"""

from __future__ import annotations

import logging
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import faust
import faust.stores
from faust.types import TP

from stream import gcpolicy
from stream.catalog import EVENT_TYPES
from stream.settings import Settings
from stream.worker import faust_adapter
from stream.worker.runtime import LAG_EVERY_S, Runtime
from stream.worker.slots import take_slot

logger = logging.getLogger(__name__)

# `aurora://`: the local state store on disk (stream/worker/store.py).
faust.stores.STORES.aliases["aurora"] = "stream.worker.store:Store"


def _faust_data_parent() -> Path:
    parent = Path(tempfile.gettempdir()) / "aurora-features-worker"
    parent.mkdir(parents=True, exist_ok=True)
    return parent


class Worker(faust.Worker):
    """Faust's worker without its start-up spinner.

    Below the level `info` Faust shows a spinner while the worker starts, and to feed it sets the
    root logger to DEBUG, so every debug call in the process, three per changelog record in
    Faust's recovery, made a log record and wrote a spinner frame (escape codes, into a log
    file as often as not) for as long as the worker ran.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spinner = None


def build_app(settings: Settings, writer_pool: ProcessPoolExecutor | None = None) -> faust.App:
    """The worker app; `python -m stream worker` and `faust -A stream.worker worker` run it."""
    brokers = [f"kafka://{host}:{port}" for host, port in settings.kafka_servers]
    slot = take_slot(
        settings.worker_state_dir, settings.worker_app_id, settings.worker_instance_id or None
    )
    # Static membership: the group knows this worker by its slot across restarts.
    instance_id = slot.instance_id if settings.worker_static_membership else None
    app = faust.App(
        settings.worker_app_id,
        broker=brokers,
        broker_credentials=settings.faust_credentials(),
        store=settings.worker_store,
        # Faust makes a data folder even for in-memory tables: keep it out of the working folder.
        datadir=str(_faust_data_parent() / "{conf.name}"),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication_factor,
        consumer_auto_offset_reset="earliest",
        web_enabled=settings.worker_web_port != 0,
        web_port=settings.worker_web_port or 6066,
        stream_buffer_maxsize=max(4096, settings.worker_batch_max * 2),
        # A fetch is a batch: at most this many events.
        broker_max_poll_records=settings.worker_batch_max,
        producer_acks=-1,
        broker_session_timeout=settings.worker_session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.worker_session_timeout_s / 3),
        Worker=Worker,
        # Messages and state are bytes; the ingestor and UserState do their own (de)coding.
        key_serializer="raw",
        value_serializer="raw",
        consumer_group_instance_id=instance_id,
    )
    app.aurora_slot = slot  # type: ignore[attr-defined]  # held for the process's life
    app.aurora_state_dir = slot.directory  # type: ignore[attr-defined]  # stream/worker/store.py
    # bytes in, bytes out: Faust's tables otherwise (de)serialise keys and values as JSON.
    table = app.Table(
        "user-state", partitions=settings.topic_partitions, key_type=bytes, value_type=bytes
    )
    dlq = app.topic(settings.dlq_topic, key_serializer="raw", value_serializer="raw")
    runtime = Runtime(settings, table, dlq)
    runtime.writer = writer_pool  # started by the caller, or on the app's start
    event_topics = {settings.topic_for(t) for t in EVENT_TYPES}
    runtime.owned = lambda: {
        tp.partition for tp in app.consumer.assignment() if tp.topic in event_topics
    }
    app.aurora_runtime = runtime  # type: ignore[attr-defined]  # tests and status read it

    @app.on_configured.connect
    def _configured(*_: Any, **__: Any) -> None:
        logging.getLogger("aiokafka").setLevel(logging.WARNING)

    @app.on_before_shutdown.connect
    async def _shutdown(*_: Any, **__: Any) -> None:
        # A clean stop leaves the local store holding the whole changelog: no tail on restart.
        await runtime.stored()
        await runtime.changelog.stop()

    def _revoked(_: Any, /, *args: Any, signal: Any, **__: Any) -> None:
        revoked: set[TP] = args[0]
        runtime.forget(revoked)

    app.on_partitions_revoked.connect(_revoked)

    # The event topics are subscribed without Faust agents or streams: the consumer hands their
    # records to the runtime a fetch at a time (decision 0001).
    for event_type in EVENT_TYPES:
        topic = app.topic(
            settings.topic_for(event_type), key_serializer="raw", value_serializer="raw"
        )
        app.topics.add(topic)

    @app.task  # type: ignore[untyped-decorator]
    async def _start_writer() -> None:
        if not app.conf.web_enabled:
            without_monitor(app)
        runtime.start_writer()
        if settings.worker_metrics_port:
            runtime.metrics.serve(settings.worker_metrics_port)
        gcpolicy.settle_on_clock()

    @app.timer(interval=LAG_EVERY_S)  # type: ignore[untyped-decorator]
    async def _watch() -> None:
        await runtime.watch(app)

    async def _sweep() -> None:
        await runtime.sweep()

    app.timer(interval=settings.worker_sweep_interval_s)(_sweep)

    # Our consumer: it re-reads the records Faust fetched and dropped (faust_adapter.py).
    # The consumer is created when the worker starts, from whatever transport the app has then.
    app.transport = faust_adapter.Transport(app.conf.broker_consumer, app)
    app.transport.sink = runtime
    return app


def without_monitor(app: faust.App) -> None:
    """Stop Faust's Monitor sensor from observing each event: about 4% of the main thread.

    It keeps per-event and per-stream statistics for Faust's web views only; our metrics are our
    own. The monitor object stays, for the consumer's direct calls to it.
    """
    if any(sensor is app.monitor for sensor in app.sensors):
        app.sensors.remove(app.monitor)
