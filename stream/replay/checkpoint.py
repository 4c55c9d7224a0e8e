"""How far an interrupted replay got, so the same command resumes it.

The file is JSON lines: the first holds the whole checkpoint, each later save appends a line
with the new event count and only the users cleared since the save before. A save then costs
what changed, not every user cleared so far: rewriting them all, sorted, every few seconds
would cost a backfill of a million users seconds a save. Invariant: a load reads the lines in
order and stops at the first it cannot parse (a save cut short), so it returns a state that
was saved whole, as old as that line; an older checkpoint is a correct one (stream/replay/run.py).
"""

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
    # The users cleared since the last save, which the next one appends.
    _pending: dict[str, list[str]] = field(default_factory=dict, repr=False)
    # Whether the file holds this checkpoint as of its last save, so that a save may append;
    # otherwise (a new run, a file cut short) the next save writes it whole.
    _appending: bool = field(default=False, repr=False)

    @classmethod
    def load(cls, path: Path, key: str) -> Checkpoint:
        found = cls(path, key)
        if not path.exists():
            return found
        whole = True
        for line in path.read_bytes().splitlines():
            try:
                data = orjson.loads(line)
                if data.get("key") != key:
                    return cls(path, key)  # another run's: start afresh, and write over it
                found.events_done = int(data["events_done"])
                for view, users in data["cleared"].items():
                    found.cleared.setdefault(view, set()).update(users)
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
                whole = False
                break
        found._appending = whole
        return found

    def add_cleared(self, view: str, users: list[str]) -> None:
        self.cleared.setdefault(view, set()).update(users)
        self._pending.setdefault(view, []).extend(users)

    def save(self) -> None:
        if self._appending:
            line = {"key": self.key, "events_done": self.events_done, "cleared": self._pending}
            with self.path.open("ab") as file:
                file.write(orjson.dumps(line) + b"\n")
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            data = {
                "key": self.key,
                "events_done": self.events_done,
                "cleared": {v: sorted(u) for v, u in self.cleared.items()},
            }
            tmp = self.path.with_suffix(".tmp")
            tmp.write_bytes(orjson.dumps(data) + b"\n")
            tmp.replace(self.path)  # atomic: an interruption leaves the old or the new checkpoint
            self._appending = True
        self._pending = {}

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
