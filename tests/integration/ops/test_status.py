"""`python -m stream status` against a real run: the report, and the exit code of a health check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from stream.catalog import VIEWS
from stream.ops.partitions import TABLES
from stream.settings import Settings
from tests.integration.helpers import (
    Worker,
    expected_rows,
    offline_rows,
    produce,
    run_stream,
    traffic,
    wait_for,
)

pytestmark = pytest.mark.integration


def test_status_is_healthy_after_a_run_and_not_without_data(
    stream_settings: Settings,
    start_worker: Worker,
    pg_conn: psycopg.Connection[Any],
    unique: str,
    tmp_path: Path,
) -> None:
    # The traffic ends at the current hour: every view's newest row is well inside its TTL.
    events = traffic(unique, users=6, days=1)
    start_worker()
    produce(stream_settings, events)
    want = expected_rows(events)
    wait_for(lambda: offline_rows(pg_conn, unique) == len(want), 240, "offline rows", tmp_path)

    result = run_stream(stream_settings, "status")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for spec in VIEWS:
        assert any(line.startswith(spec.name) for line in lines), spec.name
    for event_type in ("activity", "sleep", "exercise", "social", "sync"):
        assert any(line.startswith(stream_settings.topic_for(event_type)) for line in lines)
    assert "dead letters:" in result.stdout and lines[-2] == "healthy"
    # Each Postgres table's days: today and the days ahead, which the worker made as it started.
    tables = {w[0]: w for w in (line.split() for line in lines) if w and w[0] in TABLES}
    assert set(tables) == set(TABLES)
    assert all(int(t[1]) >= 1 + stream_settings.partition_days_ahead for t in tables.values())

    # A project nothing was pushed to: every view is "nothing online", and the check fails.
    empty = stream_settings.model_copy(update={"feast_project": f"{unique}_empty"})
    result = run_stream(empty, "status")
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.count("nothing online") == len(VIEWS)
    assert "NOT healthy" in result.stdout
