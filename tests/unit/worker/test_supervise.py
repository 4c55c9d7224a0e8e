"""What a supervised worker process is told, and what the supervisor reports."""

from __future__ import annotations

import os
import signal

from stream.settings import Settings
from stream.worker.supervise import PARENT_VARIABLE, _status, child_env


def test_each_worker_process_runs_alone_on_ports_of_its_own() -> None:
    settings = Settings(worker_processes=3, worker_metrics_port=9500, worker_web_port=6100)
    envs = [child_env(settings, i) for i in range(3)]
    assert [e["AURORA_WORKER_PROCESSES"] for e in envs] == ["1", "1", "1"]
    assert [e["AURORA_WORKER_METRICS_PORT"] for e in envs] == ["9500", "9501", "9502"]
    assert [e["AURORA_WORKER_WEB_PORT"] for e in envs] == ["6100", "6101", "6102"]
    assert {e[PARENT_VARIABLE] for e in envs} == {str(os.getpid())}
    assert {e["AURORA_WORKER_APP_ID"] for e in envs} == {settings.worker_app_id}


def test_ports_turned_off_stay_off() -> None:
    env = child_env(Settings(worker_processes=2, worker_metrics_port=0, worker_web_port=0), 1)
    assert (env["AURORA_WORKER_METRICS_PORT"], env["AURORA_WORKER_WEB_PORT"]) == ("0", "0")


def test_a_killed_worker_is_reported_as_a_shell_would() -> None:
    assert _status(0) == 0
    assert _status(3) == 3
    assert _status(-signal.SIGKILL) == 137
