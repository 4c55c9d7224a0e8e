"""The capacity plan is arithmetic over results: figures follow them, missing ones say so."""

from __future__ import annotations

from typing import Any

from bench.capacity import page


def results() -> dict[str, dict[str, Any]]:
    when = {"machine": {"when": "2026-12-07T00:00:00Z"}}
    return {
        "ingest": {
            **when,
            "worker": {
                "events_per_s": 9_000,
                "steady_events_per_s": 10_000,
                "cpu": {"total_us_per_event": 60, "cores_busy": 1.2},
            },
        },
        "replay": {
            **when,
            "compute": {"events_per_s": 50_000},
            "redis": {"users": 100, "rows": 400, "keys": 100, "bytes": 100_000,
                      "bytes_per_user": 1_000},
            "storage": {"archive_bytes": 500_000, "snapshot_bytes": 200_000,
                        "archived_rows": 1_000, "snapshot_rows": 1_000},
            "sharded": {
                "processes": 2, "one_events_per_s": 25_000, "many_events_per_s": 40_000,
                "speedup": 1.6,
                "runs": [
                    {"processes": 1, "events": 1_000, "replay_processes_cpu_s": 0.04,
                     "us_per_event": {"postgres": 10.0}},
                    {"processes": 2, "events": 1_000, "replay_processes_cpu_s": 0.05,
                     "us_per_event": {"postgres": 12.0}},
                ],
            },
        },
    }  # fmt: skip


def test_figures_are_the_measured_costs_times_the_users() -> None:
    text = page(results())
    # 10M users: 5,787 events/s on average, 23,148 at 4x peak, a worker planned at 5,000.
    assert "| 10,000,000 | 5,787 | 23,148 | 5 | 16 |" in text
    assert "| 1,000,000 | 1.0 GB |" in text  # 1,000 bytes a user in Redis
    # 50M events a day at 500 + 200 bytes each.
    assert "| 1,000,000 | 50,000,000 | 25.0 GB | 10.0 GB | 35.0 GB | 1.1 TB |" in text
    # 1.5B events: at 25,000/s replayed plus as many warm-up events at 50,000/s computed.
    assert "| 1,000,000 | 1,500,000,000 | 25.0 h (0.2) | 3.1 h (2.0) |" in text
    assert "linear" in text and "`bench/results/replay.json` (2026-12-07T00:00:00Z)" in text


def test_missing_results_say_not_measured() -> None:
    text = page({})
    assert text.count("not measured") == 5


def test_a_baseline_checkouts_runs_are_not_this_codes_costs() -> None:
    measured = results()
    runs = measured["replay"]["sharded"]["runs"]
    # `bench_replay --baseline`: an older checkout's runs, interleaved, at twice the cost.
    runs.append(
        {"processes": 1, "code": "baseline", "events": 1_000, "replay_processes_cpu_s": 0.08,
         "us_per_event": {"postgres": 20.0}}
    )  # fmt: skip
    text = page(measured)
    assert "40.0 us of CPU an event in its processes" in text
    assert "| 1,000,000 | 1,500,000,000 | 25.0 h (0.2) | 3.1 h (2.0) |" in text
