"""The private names of Faust and aiokafka the worker relies on are still there.

An upgrade that renames one fails here, with a message naming the assumption, instead of as a
worker that loses or rereads records (stream/worker/faust_adapter.py, aiokafka_adapter.py).
"""

from __future__ import annotations

import asyncio
import inspect

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.consumer import fetcher
from faust.transport.drivers import aiokafka as faust_aiokafka

from stream.worker import aiokafka_adapter, faust_adapter
from tests.unit.worker.fixtures import consumer


@pytest.mark.parametrize("name", faust_adapter.ASSUMED_METHODS)
def test_faust_consumer_still_has_the_method(name: str) -> None:
    assert callable(getattr(faust_aiokafka.Consumer, name, None)), (
        f"Faust's aiokafka Consumer has no method {name}: stream/worker/faust_adapter.py "
        "overrides or calls it"
    )


def test_faust_consumer_still_holds_the_state() -> None:
    async def check() -> list[str]:
        made = consumer()
        missing = [n for n in faust_adapter.ASSUMED_STATE if not hasattr(made, n)]
        thread = made._thread
        missing += [
            f"_thread.{n}" for n in faust_adapter.ASSUMED_THREAD_METHODS if not hasattr(thread, n)
        ]
        return missing

    missing = asyncio.run(check())
    assert not missing, (
        f"Faust's consumer no longer has {missing}: stream/worker/faust_adapter.py reads them"
    )


def test_aiokafka_fetcher_makes_readers_by_the_module_name() -> None:
    assert fetcher.PartitionRecords is aiokafka_adapter._PartitionRecords, (
        "aiokafka_adapter's reader of bare records is not the one aiokafka's fetcher uses"
    )
    base = aiokafka_adapter._PartitionRecords.__bases__[0]
    assert callable(getattr(base, "_consumer_record", None)), (
        "aiokafka's PartitionRecords has no _consumer_record: the bare records for the event "
        "topics (aiokafka_adapter.fetch_bare) no longer take effect"
    )
    source = inspect.getsource(fetcher)
    assert "PartitionRecords(" in source and "self._consumer_record(" in source, (
        "aiokafka's fetcher no longer makes PartitionRecords by its module-level name, or no "
        "longer wraps records through _consumer_record"
    )


def test_aiokafka_consumer_still_tracks_positions_in_its_subscription() -> None:
    async def check() -> None:
        made = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1")
        subscription = getattr(made, "_subscription", None)
        assert subscription is not None and hasattr(subscription, "subscription"), (
            "AIOKafkaConsumer has no _subscription.subscription: aiokafka_adapter.seek_unmoved "
            "reads each partition's position there"
        )

    asyncio.run(check())
