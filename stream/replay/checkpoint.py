"""How far an interrupted replay got, so the same command resumes it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import orjson


@dataclass
class Checkpoint:
    """How far a run got: events applied and written, and which users' ranges were cleared."""

    path: Path
    key: str
    events_done: int = 0
    cleared: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, key: str) -> Checkpoint:
        if path.exists():
            data = orjson.loads(path.read_bytes())
            if data.get("key") == key:
                cleared = {v: set(users) for v, users in data["cleared"].items()}
                return cls(path, key, int(data["events_done"]), cleared)
        return cls(path, key)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "key": self.key,
            "events_done": self.events_done,
            "cleared": {v: sorted(u) for v, u in self.cleared.items()},
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(data))
        tmp.replace(self.path)  # atomic: an interruption leaves the old or the new checkpoint

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
