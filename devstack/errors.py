"""Errors of the stack manager.

StackError                 anything that keeps the stack from coming up or going down
├── ServiceNotReadyError   a service did not answer within the timeout (carries the log's tail)
└── MissingToolError       a binary the stack needs is absent and could not be installed
"""

from __future__ import annotations

from pathlib import Path


class StackError(Exception):
    """The stack could not be brought to the requested state."""


class ServiceNotReadyError(StackError):
    """A service did not answer within its timeout."""

    def __init__(self, service: str, timeout_s: float, reason: str, log: Path | None) -> None:
        self.service = service
        self.timeout_s = timeout_s
        self.reason = reason
        self.log = log
        tail = _tail(log) if log else ""
        message = f"{service} did not answer within {timeout_s:.0f}s: {reason}"
        if log:
            message += f"\n--- last lines of {log} ---\n{tail}"
        super().__init__(message)


class MissingToolError(StackError):
    """A program the local stack runs is not installed and could not be installed."""

    def __init__(self, tool: str, hint: str) -> None:
        self.tool = tool
        super().__init__(f"{tool} is not available: {hint}")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(log unreadable: {exc})"
    return "\n".join(text.splitlines()[-lines:])
