"""Several worker processes under one `python -m stream worker`: AURORA_WORKER_PROCESSES.

A worker's event loop, which every event passes through, runs on one core. On 2 cores one worker
kept 1.4-1.5 of them busy, and two workers in the group 1.8-1.9 (docs/decisions/0014-several-
worker-processes.md). Each process here is a whole worker of the consumer group, so they share
the partitions exactly as workers on different machines do.

The supervisor only starts them, passes SIGTERM and SIGINT on, and stops them all once one has
ended. A worker that stops for good is a failure its orchestrator (systemd, Kubernetes) must
see, not something to restart quietly here. A supervisor killed outright takes its workers with
it: each one stops, cleanly, once its parent is gone.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from types import FrameType

from stream.settings import Settings

logger = logging.getLogger(__name__)

# Tells a worker the pid of the supervisor it must not outlive. Not a setting: only the
# supervisor sets it.
PARENT_VARIABLE = "STREAM_SUPERVISOR_PID"
STOP_TIMEOUT_S = 60.0


def child_env(settings: Settings, index: int) -> dict[str, str]:
    """The environment of worker `index`: these settings, one process, ports of its own."""
    env = {**os.environ, **settings.to_env()}
    env["AURORA_WORKER_PROCESSES"] = "1"
    env[PARENT_VARIABLE] = str(os.getpid())
    if settings.worker_metrics_port:
        env["AURORA_WORKER_METRICS_PORT"] = str(settings.worker_metrics_port + index)
    if settings.worker_web_port:
        env["AURORA_WORKER_WEB_PORT"] = str(settings.worker_web_port + index)
    return env


def supervise(settings: Settings, worker_args: Sequence[str]) -> int:
    """Run `settings.worker_processes` workers until a signal, or until one of them ends."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "stream", "worker", *worker_args],
            env=child_env(settings, index),
            # Out of the terminal's process group: a Ctrl-C reaches them once, through here.
            start_new_session=True,
        )
        for index in range(settings.worker_processes)
    ]
    pids = ", ".join(str(p.pid) for p in processes)
    logger.info("started %d worker processes: %s", len(processes), pids)
    signalled = False

    def signal_all(signum: int) -> None:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signum)

    def forward(signum: int, _: FrameType | None) -> None:
        nonlocal signalled
        signalled = True
        signal_all(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    first = _first_to_end(processes)
    if not signalled:
        logger.error(
            "worker process %d exited with code %s: stopping the others",
            first.pid,
            first.returncode,
        )
        signal_all(signal.SIGTERM)
    codes = _wait_all(processes)
    if signalled:
        return next((_status(c) for c in codes if c), 0)
    # Nobody asked it to stop: even a clean exit is a failure of the whole.
    return _status(first.returncode) or 1


def _status(returncode: int) -> int:
    """An exit status as a shell reports it: 128 + N for a process killed by signal N."""
    return returncode if returncode >= 0 else 128 - returncode


def _first_to_end(processes: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    while True:
        for process in processes:
            if process.poll() is not None:
                return process
        time.sleep(0.2)


def _wait_all(processes: list[subprocess.Popen[bytes]]) -> list[int]:
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            logger.error("worker process %d did not stop in time: killing it", process.pid)
            process.kill()
            process.wait()
    return [p.returncode for p in processes]


def stop_with_supervisor() -> None:
    """In a supervised worker: stop it, as SIGTERM would, once the supervisor is gone."""
    parent = os.environ.get(PARENT_VARIABLE)
    if not parent:
        return
    expected = int(parent)

    def watch() -> None:
        while os.getppid() == expected:
            time.sleep(1.0)
        logger.error("the supervisor (pid %d) is gone: stopping", expected)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="supervisor-watch", daemon=True).start()
