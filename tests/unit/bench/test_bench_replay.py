"""The sharded rounds' summary: the speedup over this code's runs alone, and a baseline
checkout's runs, interleaved, compared with them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import bench_replay
from stream.replay.span import ReplayRange, parse_moment
from stream.settings import get_settings

# events/s of each (processes, checkout): this code is faster, and 2 shards more so.
RATES = {(1, None): 30_000.0, (2, None): 45_000.0, (1, "old"): 20_000.0, (2, "old"): 20_000.0}


def fake_command(
    settings: Any, span: ReplayRange, processes: int, checkout: Path | None = None
) -> tuple[int, float, dict[str, Any]]:
    rate = RATES[(processes, None if checkout is None else checkout.name)]
    cpu = {"cpu_s": {"replay main": 1.0}, "postgres_backends_cpu_s": 0.5, "cores_busy": 1.5}
    return 60_000, 60_000 / rate, cpu


def test_the_speedup_is_this_codes_and_the_baseline_is_compared(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(bench_replay, "replay_command", fake_command)
    span = ReplayRange(parse_moment("2026-12-01T00:00:00Z"), parse_moment("2026-12-02T00:00:00Z"))
    summary = bench_replay.sharded_rounds(get_settings(), span, 2, 2, tmp_path / "old")
    assert [(r["round"], r["processes"], r["code"]) for r in summary["runs"]] == [
        (k, n, code) for k in (1, 2) for n in (1, 2) for code in ("this", "baseline")
    ]
    assert summary["speedup"] == 1.5 and summary["speedup_per_round"] == [1.5, 1.5]
    assert summary["baseline"]["this_over_baseline"] == {"1": 1.5, "2": 2.25}
    assert "baseline" not in bench_replay.sharded_rounds(get_settings(), span, 2, 1)
