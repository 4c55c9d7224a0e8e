"""The quality report, rendered in headless Chromium: what a person would see on the page."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from devstack.proc import ensure_debian_package
from stream.catalog import FEATURES
from stream.ops.migrate import load_migrations, migrate
from stream.settings import Settings
from tests.integration.helpers import run_stream

pytestmark = pytest.mark.integration


def chromium() -> str:
    return ensure_debian_package(
        "chromium", lambda: shutil.which("chromium") or shutil.which("chromium-browser")
    )


def fill(conn: psycopg.Connection[Any], schema: str, now: datetime) -> None:
    """Two weeks of user_activity_features: the 7d count shifts this week, energy does not."""
    rng = np.random.default_rng(5)
    rows: list[tuple[str, datetime, int | None, float | None]] = []
    for week, count_mean in ((1, 10), (0, 25)):
        for i in range(400):
            at = now - timedelta(days=7 * week + 6.5) + timedelta(minutes=20 * i)
            energy = float(np.clip(rng.normal(6, 1), 1, 10))
            rows.append((f"q-{i % 40}", at, int(rng.poisson(count_mean)), energy))
    rows.append(("q-bad", now - timedelta(days=1), 3, 42.0))  # out of the schema's 1..10
    rows.append(("q-null", now - timedelta(days=1), None, None))
    with conn.cursor() as cur:
        cur.execute(f"SET search_path TO {schema}")
        cur.executemany(
            "INSERT INTO user_activity_features "
            "(user_id, event_timestamp, activity_count_7d, avg_energy_7d) VALUES (%s, %s, %s, %s)",
            rows,
        )
    conn.commit()


def test_the_report_shows_drift_range_and_charts_in_a_browser(
    settings: Settings,
    pg_conn: psycopg.Connection[Any],
    pg_schema: str,
    tmp_path: Path,
) -> None:
    browser = chromium()
    mine = settings.model_copy(update={"postgres_schema": pg_schema})
    migrate(settings.postgres_conninfo(), load_migrations(), schema=pg_schema)
    fill(pg_conn, pg_schema, datetime.now(UTC))
    page = tmp_path / "quality.html"

    result = run_stream(mine, "quality", "--days", "7", "--out", str(page))
    assert result.returncode == 0, result.stdout + result.stderr

    dom = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
         "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    # Every feature of the catalog has a row; the two with data drew their charts.
    assert dom.count("<tr class=") == len(FEATURES)
    assert re.search(r'data-charts-drawn="(\d+)"', dom), "the page's load handler did not run"
    drawn = int(re.search(r'data-charts-drawn="(\d+)"', dom).group(1))  # type: ignore[union-attr]
    assert drawn >= 2
    rows = {
        m.group(2): m.group(1)
        for m in re.finditer(r'<tr class="(\w+)"><td>[^<]*</td><td>(\w+)</td>', dom)
    }
    assert rows["activity_count_7d"] == "major"
    assert rows["avg_energy_7d"] == "stable"
    energy = re.search(
        r"<td>avg_energy_7d</td><td>([\d,]+)</td><td>([\d.]+)%</td><td>(\d+)</td>", dom
    )
    assert energy is not None
    assert energy.group(3) == "1"  # the one value of 42
    assert float(energy.group(2)) > 0  # the null row counts as missing
    assert "Major drift (PSI &gt; 0.25): 1." in dom

    screenshot = tmp_path / "quality.png"
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1200,900",
         f"--screenshot={screenshot}", page.as_uri()],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    assert screenshot.stat().st_size > 20_000  # a page with tables and charts, not a blank one
