"""One batch of Kafka messages in, rows, archive records and dead letters out: no I/O here.

The worker (stream/worker/runtime.py) and `make replay` both call `Ingestor.process`, so the
aggregation is one implementation. States are looked up through a loader, so the worker can
restore them on first use.
"""

from __future__ import annotations

import base64
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from stream.core.events import Event, decode, event_seconds
from stream.core.observe import observe
from stream.core.records import ArchiveRow, Message, Row
from stream.core.state import Outcome, UserState
from stream.errors import EventValidationError


def archive_row(event: Event, message: Message, too_late: bool) -> ArchiveRow:
    """The archive's row of a valid event, holding the event's JSON as it arrived.

    The message decoded, so it is UTF-8 JSON already: writing it as it is spares encoding the
    event again here and decoding it in the writer process. Made as the event is applied, so a
    batch waiting to be written holds these flat tuples rather than the parsed event and its
    message, which the garbage collector would walk again each time it runs.
    """
    text = message.value.decode() if message.value else orjson.dumps(event).decode()
    return (
        event["event_id"],
        event["user_id"],
        event["event_type"],
        event["event_timestamp"],
        text,
        message.topic,
        message.partition,
        message.offset,
        too_late,
    )


@dataclass(slots=True)
class BatchResult:
    rows: list[Row] = field(default_factory=list)
    archive: list[ArchiveRow] = field(default_factory=list)
    dead_letters: list[tuple[Message, bytes]] = field(default_factory=list)
    # (user_id, event_type) -> (partition, state) of the states this batch changed. The state
    # itself is held, not looked up later: a rebalance during the writes may drop it from the
    # worker's map, and its changelog record must still be written.
    dirty: dict[tuple[str, str], tuple[int, UserState]] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)


StateLoader = Callable[[str, str], UserState]


def dead_letter(message: Message, error: EventValidationError) -> bytes:
    """The DLQ record: the original bytes, what was wrong, and where the message came from."""
    return orjson.dumps(
        {
            "error": {
                "field": error.field,
                "rule": error.rule,
                "detail": error.detail,
                "event_type": error.event_type,
            },
            "source": {
                "topic": message.topic,
                "partition": message.partition,
                "offset": message.offset,
            },
            "key_b64": base64.b64encode(message.key).decode() if message.key else None,
            "value_b64": base64.b64encode(message.value).decode(),
        }
    )


class Ingestor:
    """Decode, validate, dedupe and aggregate; `topic_types` maps each topic to its event type."""

    def __init__(
        self,
        topic_types: Mapping[str, str],
        load_state: StateLoader,
        max_ahead_s: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.topic_types = topic_types
        self.load_state = load_state
        # Events stamped further ahead of this clock come from a broken device clock (or
        # someone trying to push a user's windows into the future): dead letters.
        self.max_ahead_s = max_ahead_s
        self.clock = clock

    @classmethod
    def in_memory(
        cls, topic_types: Mapping[str, str] | None = None
    ) -> tuple[Ingestor, dict[tuple[str, str], UserState]]:
        """An ingestor keeping its states in a plain dict (replay, benchmarks); and the dict."""
        states: dict[tuple[str, str], UserState] = {}

        def load(user_id: str, event_type: str) -> UserState:
            state = states.get((user_id, event_type))
            if state is None:
                state = states[(user_id, event_type)] = UserState(user_id, event_type)  # type: ignore[arg-type]
            return state

        return cls(topic_types or {}, load), states

    def process(self, messages: Iterable[Message]) -> BatchResult:
        result = BatchResult()
        latest = None if self.max_ahead_s is None else self.clock() + self.max_ahead_s
        for message in messages:
            try:
                event = decode(message.value)
                expected = self.topic_types.get(message.topic)
                if expected is not None and event["event_type"] != expected:
                    raise EventValidationError(
                        "event_type",
                        "topic",
                        f"is {event['event_type']!r} on the {expected} topic {message.topic!r}",
                        event["event_type"],
                    )
                if latest is not None and event_seconds(event) > latest:
                    raise EventValidationError(
                        "event_timestamp",
                        "future",
                        f"is more than {self.max_ahead_s:g} s ahead of the worker's clock",
                        event["event_type"],
                    )
            except EventValidationError as exc:
                result.dead_letters.append((message, dead_letter(message, exc)))
                result.counts["invalid"] += 1
                continue
            self._apply(event, message, result, archive=True)
        return result

    def process_valid(self, items: Iterable[tuple[Event, Message]]) -> BatchResult:
        """Events validated and archived before (replay reads the archive): no decoding, and no
        archive rows made again."""
        result = BatchResult()
        for event, message in items:
            self._apply(event, message, result, archive=False)
        return result

    def _apply(self, event: Event, message: Message, result: BatchResult, archive: bool) -> None:
        user_id: str = event["user_id"]
        event_type: str = event["event_type"]
        state = self.load_state(user_id, event_type)
        outcome, row = state.apply(observe(event))
        result.counts[outcome.value] += 1
        if outcome is Outcome.DUPLICATE:
            return
        if archive:
            result.archive.append(archive_row(event, message, outcome is Outcome.TOO_LATE))
        if row is not None:
            result.rows.append(row)
            result.dirty[(user_id, event_type)] = (message.partition, state)


def combine(results: Iterable[BatchResult]) -> BatchResult:
    """Several batches as one write; each user's rows keep their order (batches come in order)."""
    total = BatchResult()
    for result in results:
        total.rows += result.rows
        total.archive += result.archive
        total.dead_letters += result.dead_letters
        total.dirty.update(result.dirty)
        total.counts.update(result.counts)
    return total


def summarize(result: BatchResult) -> dict[str, Any]:
    return {"rows": len(result.rows), "dead_letters": len(result.dead_letters), **result.counts}
