"""The worker's logging: a quiet level stays quiet, with no spinner feeding on debug records."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from stream.settings import Settings
from stream.worker.app import Worker, build_app


@pytest.fixture
def root() -> Iterator[logging.Logger]:
    logger = logging.getLogger()
    level, handlers = logger.level, list(logger.handlers)
    yield logger
    logger.setLevel(level)
    logger.handlers[:] = handlers


@pytest.mark.parametrize("level", [logging.WARNING, logging.ERROR, logging.CRITICAL])
def test_a_quiet_worker_makes_no_debug_records(root: logging.Logger, level: int) -> None:
    app = build_app(Settings())
    out = io.StringIO()
    assert app.conf.Worker is Worker  # type: ignore[comparison-overlap]  # `faust worker` makes it
    worker = Worker(app, loglevel=level, stdout=out, stderr=out)
    root.handlers[:] = [logging.StreamHandler(out)]
    root.setLevel(level)
    # What mode calls once it has configured the root logger.
    worker.on_setup_root_logger(root, level)
    assert worker.spinner is None
    assert root.level == level
    assert not logging.getLogger("faust.tables.recovery").isEnabledFor(logging.DEBUG)
    assert [type(h).__name__ for h in root.handlers] == ["StreamHandler"]
