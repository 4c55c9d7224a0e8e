"""Process plumbing for the local stack: pid files, stopping, service users, Debian packages."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pwd
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from devstack.errors import MissingToolError, StackError

logger = logging.getLogger(__name__)


def read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def pid_alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); it is not running.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def children(pid: int) -> list[int]:
    """The pids of a process's children (every thread's), from /proc. A thread that ends while
    they are read has none left: it is passed over."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found.extend(int(c) for c in (task / "children").read_text().split())
        except FileNotFoundError:
            continue
    return found


def terminate(pid: int, name: str, grace_s: float = 30.0) -> None:
    """SIGTERM the process group, then SIGKILL it if it outlives the grace period."""
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while pid_alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.2)
    if pid_alive(pid):
        logger.warning("%s (pid %d) ignored SIGTERM for %.0fs, killing it", name, pid, grace_s)
        _signal_group(pid, signal.SIGKILL)
        time.sleep(0.5)
    _reap(pid)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    # Services are started in their own session, so the group holds the service and its children.
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return
    except PermissionError:
        os.kill(pid, sig)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def service_user(name: str) -> pwd.struct_passwd | None:
    """The account a service runs as: its own when we are root, ours otherwise."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(name)
    except KeyError as exc:
        raise StackError(f"user {name!r} is missing; reinstall its Debian package") from exc


def owned_dir(preferred: Path, user: pwd.struct_passwd | None) -> Path:
    """A data folder the service user can write, at `preferred` when that path is reachable.

    A clone under a private folder (mktemp -d is mode 0700) is unreachable for another user. Then
    the data goes under /var/lib/aurora-stack, keyed by the project path, and `preferred` becomes
    a link to it so everything is still found in .stack/.
    """
    if user is None:
        preferred.mkdir(parents=True, exist_ok=True)
        return preferred
    if preferred.is_symlink():
        target = preferred.resolve()
        target.mkdir(parents=True, exist_ok=True)
        os.chown(target, user.pw_uid, user.pw_gid)
        return target
    preferred.mkdir(parents=True, exist_ok=True)
    os.chown(preferred, user.pw_uid, user.pw_gid)
    if _reachable_by(preferred, user):
        return preferred
    key = hashlib.sha256(str(preferred.resolve()).encode()).hexdigest()[:12]
    target = Path("/var/lib/aurora-stack") / key / preferred.name
    target.mkdir(parents=True, exist_ok=True)
    target.parent.chmod(0o755)
    os.chown(target, user.pw_uid, user.pw_gid)
    preferred.rmdir()
    preferred.symlink_to(target)
    logger.info("%s is not reachable by %s; its data lives in %s", preferred, user.pw_name, target)
    return target


def _reachable_by(path: Path, user: pwd.struct_passwd) -> bool:
    probe = subprocess.run(
        ["test", "-w", str(path), "-a", "-x", str(path)],
        user=user.pw_uid,
        group=user.pw_gid,
        check=False,
    )
    return probe.returncode == 0


_apt_updated = False


def ensure_debian_package(package: str, locate: Callable[[], str | None]) -> str:
    """What `locate` finds, after installing the Debian `package` when it finds nothing."""
    found = locate()
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise MissingToolError(package, f"install the Debian package {package!r} (apt-get install)")
    global _apt_updated
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    logger.info("installing %s with apt-get", package)
    if not _apt_updated:
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        _apt_updated = True
    subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True, env=env)
    found = locate()
    if not found:
        raise MissingToolError(
            package, "apt-get installed it but its programs are not where expected"
        )
    return found
