"""Every error Aurora Features raises on purpose, in one tree.

AuroraError                     anything this package raises on purpose
├── ConfigError                 a setting or an argument out of range
│   └── GeneratorConfigError    a synthetic-traffic parameter (also a ValueError)
├── EventValidationError        an event broke the contract: a dead letter (also a ValueError)
├── JsonlFormatError            a line of a generated-stream file is no message (also a ValueError)
├── DeliveryError               the broker did not take some produced events
├── TopicCreationError          the broker refused to create a topic
├── MigrationError              the migration history disagrees with the files, or one failed
├── PartitionError              a partition that cannot be made or dropped, or a retention refused
├── ReplayError                 a bad range, an unreadable source, an unreachable store
└── SinkError                   a write that cannot be made
    ├── PushSourceError         a push source the registry lacks, or rows its views cannot take
    ├── OfflineWriteError       a batch a view's snapshot table refused
    ├── SinkRetryExhaustedError a write that kept failing for longer than allowed
    └── UnsupportedStoreError   a store the direct Redis write cannot serve: Feast's write is used

A bad event is data, not a crash: EventValidationError sends it to the dead-letter topic.
Every error pickles with its fields, so one raised in the writer process reaches the worker whole.
"""

from __future__ import annotations

from typing import Any


def _rebuild(cls: type[AuroraError], args: tuple[Any, ...], fields: dict[str, Any]) -> AuroraError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(fields)
    return error


class AuroraError(Exception):
    """Raised on purpose by Aurora Features; the subclasses say what went wrong."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Constructors take structured fields, not the message: rebuild from both as they are.
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


class ConfigError(AuroraError):
    """A setting or an argument is out of its range."""


class GeneratorConfigError(ConfigError, ValueError):
    """A generator parameter is out of range."""

    def __init__(self, name: str, problem: str) -> None:
        self.name = name
        super().__init__(f"{name} {problem}")


class EventValidationError(AuroraError, ValueError):
    """An event broke the contract: `field` (a dotted path such as payload.mood) broke `rule`."""

    def __init__(
        self,
        field: str,
        rule: str,
        detail: str,
        event_type: str | None = None,
        index: int | None = None,
    ) -> None:
        self.field = field
        self.rule = rule
        self.detail = detail
        self.event_type = event_type
        self.index = index
        where = f"{event_type} event" if event_type else "event"
        if index is not None:
            where += f" #{index}"
        super().__init__(f"{where}: {field} {detail} (rule: {rule})")

    def at_index(self, index: int) -> EventValidationError:
        """The same error, saying which event of a batch it was."""
        return EventValidationError(self.field, self.rule, self.detail, self.event_type, index)


class JsonlFormatError(AuroraError, ValueError):
    """A line of a generated-stream file is not a message record."""

    def __init__(self, line_number: int, problem: str) -> None:
        self.line_number = line_number
        super().__init__(f"line {line_number}: {problem}")


class DeliveryError(AuroraError):
    """The broker did not accept some sent events, even after the producer's retries."""

    def __init__(self, failed: int, first: BaseException) -> None:
        self.failed = failed
        self.first = first
        super().__init__(f"{failed} event(s) were not delivered; first failure: {first!r}")


class TopicCreationError(AuroraError):
    """The broker refused to create a topic for a reason other than that it exists."""

    def __init__(self, topic: str, reason: str) -> None:
        self.topic = topic
        self.reason = reason
        super().__init__(f"cannot create topic {topic!r}: {reason}")


class MigrationError(AuroraError):
    """The database's migration history disagrees with the files, or a migration failed."""


class PartitionError(AuroraError):
    """A partition cannot be made or dropped (a privilege, a table not yet partitioned), or a
    retention would drop what a replay still needs."""


class ReplayError(AuroraError):
    """A bad range, an unreadable source, or a store that cannot be reached."""


class SinkError(AuroraError):
    """A write to a store could not be made."""


class PushSourceError(SinkError):
    """A push source the registry does not know, or whose views cannot take these columns."""


class OfflineWriteError(SinkError):
    """A batch could not be written to a view's snapshot table."""

    def __init__(self, view: str, reason: str) -> None:
        self.view = view
        super().__init__(f"offline write to {view!r} failed: {reason}")


class SinkRetryExhaustedError(SinkError):
    """A write kept failing for longer than the caller allows."""


class UnsupportedStoreError(SinkError):
    """The store or the view needs Feast's general write; the caller falls back to it."""
