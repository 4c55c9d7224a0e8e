"""The lifecycle every local service shares: pid and log files, start once, stop only ours."""

from __future__ import annotations

import logging
import subprocess
from abc import ABC, abstractmethod
from collections.abc import Callable

from devstack.probes import PROBES, ProbeResult, wait_ready
from devstack.proc import pid_alive, read_pid, terminate
from stream.settings import Settings

logger = logging.getLogger(__name__)


class LocalService(ABC):
    """One server process of the local stack, tracked by a pid file under .stack/run."""

    name: str

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.stack_dir.resolve()
        self.pidfile = self.root / "run" / f"{self.name}.pid"
        self.log = self.root / "logs" / f"{self.name}.log"

    def pid(self) -> int | None:
        pid = read_pid(self.pidfile)
        return pid if pid_alive(pid) else None

    def up(self) -> ProbeResult:
        """Start the service unless it already runs, then wait until it answers."""
        self.pidfile.parent.mkdir(parents=True, exist_ok=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        if self.pid() is None:
            self.prepare()
            pid = self.spawn()
            self.pidfile.write_text(f"{pid}\n")
            logger.info("started %s (pid %d), log %s", self.name, pid, self.log)
        return self.wait()

    def probe(self) -> ProbeResult:
        """Ask the service a real question, once."""
        return PROBES[self.name](self.settings)

    def wait(self) -> ProbeResult:
        return self.wait_for(self.probe)

    def wait_for(self, probe: Callable[[], ProbeResult]) -> ProbeResult:
        return wait_ready(
            self.name,
            probe,
            self.settings.stack_timeout_s,
            self.log,
            alive=lambda: self.pid() is not None,
        )

    def down(self) -> bool:
        """Stop the process this stack started; True when there was one."""
        pid = self.pid()
        if pid is None:
            self.pidfile.unlink(missing_ok=True)
            return False
        self.stop(pid)
        self.pidfile.unlink(missing_ok=True)
        return True

    def prepare(self) -> None:  # noqa: B027 - most services need no set-up
        """One-time set-up before the first start (install, format, initdb). Idempotent."""

    @abstractmethod
    def spawn(self) -> int:
        """Start the server in its own session and return the pid to track."""

    def stop(self, pid: int) -> None:
        terminate(pid, self.name)

    def popen(self, argv: list[str], **kwargs: object) -> int:
        with self.log.open("ab") as log:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **kwargs,  # type: ignore[call-overload]  # user/group/cwd pass straight through
            )
        pid: int = process.pid
        return pid
