"""A progress display: a bar with rate and ETA on a terminal, a plain line every few seconds
otherwise."""

from __future__ import annotations

import sys
import time
from typing import IO, Protocol


class Meter(Protocol):
    """What replay tells about its progress: events done since the last update, and the end."""

    def update(self, n: int, force: bool = False) -> None: ...

    def close(self) -> None: ...


class Progress:
    """A bar with rate and ETA on a terminal; a plain line every few seconds otherwise.

    `total` may be set later; `note` is appended to each line (how many shards are done).
    """

    def __init__(
        self,
        total: int | None,
        out: IO[str] = sys.stderr,
        every_s: float = 5.0,
        label: str = "replay",
    ) -> None:
        self.total, self.out, self.every_s, self.label = total, out, every_s, label
        self.note = ""
        self.done = 0
        self.began = self.last = time.monotonic()
        self.tty = out.isatty()

    def update(self, n: int, force: bool = False) -> None:
        self.done += n
        now = time.monotonic()
        if not force and now - self.last < (0.2 if self.tty else self.every_s):
            return
        self.last = now
        elapsed = max(now - self.began, 1e-9)
        rate = self.done / elapsed
        text = f"{self.label} {self.done:,}"
        if self.total:
            share = min(1.0, self.done / self.total)
            eta = (self.total - self.done) / rate if rate else float("inf")
            bar = ("#" * int(share * 30)).ljust(30)
            text += f"/{self.total:,} [{bar}] {share:4.0%} {rate:,.0f} ev/s ETA {eta:,.0f}s"
        else:
            text += f" events {rate:,.0f} ev/s"
        text += self.note
        if self.tty:
            self.out.write("\r" + text)
        else:
            self.out.write(text + "\n")
        self.out.flush()

    def close(self) -> None:
        self.update(0, force=True)
        if self.tty:
            self.out.write("\n")
