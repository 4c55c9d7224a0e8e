"""Which slot of its machine a worker takes: its state directory and its group identity.

A worker locks the lowest free slot under `AURORA_WORKER_STATE_DIR/<app id>/` (a lock held for
as long as the process lives, released by the kernel when it dies) and keeps that slot's local
store and Kafka group instance id, `<app id>-<host>-<slot>`. Restarted, after a clean stop or
a SIGKILL, it takes the same slot again: its store is current up to the changelog's tail, and
with static membership (KIP-345) the group hands it its partitions back at once, without
waiting out the dead process's session or moving anyone else's. `AURORA_WORKER_INSTANCE_ID`
names the slot instead (a Kubernetes StatefulSet's pod name, say).
"""

from __future__ import annotations

import fcntl
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

MAX_SLOTS: Final = 256


@dataclass(frozen=True)
class Slot:
    instance_id: str
    directory: Path
    lock: IO[bytes]  # held open: closing it (or the process dying) frees the slot


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "-", name)


def take_slot(root: Path, app_id: str, instance_id: str | None = None) -> Slot:
    """Lock this worker's slot: `instance_id`'s, or the lowest free one on this host."""
    base = root / _safe(app_id)
    base.mkdir(parents=True, exist_ok=True)
    if instance_id:
        names = [instance_id]
    else:
        host = _safe(socket.gethostname())
        names = [f"{app_id}-{host}-{n}" for n in range(MAX_SLOTS)]
    for name in names:
        directory = base / _safe(name)
        directory.mkdir(exist_ok=True)
        lock = (directory / "lock").open("wb")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        lock.write(str(os.getpid()).encode())
        lock.flush()
        return Slot(name, directory, lock)
    taken = f"slot {instance_id!r} is" if instance_id else f"all {MAX_SLOTS} slots are"
    raise RuntimeError(f"{taken} held by running workers under {base}")
