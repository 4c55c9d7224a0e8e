"""The event contract: decode, validate and encode events against `schemas/*.v1.json`.

The JSON Schemas are the contract; this module compiles them once and adds the checks a schema
cannot express: NaN and Infinity (which a Python dict can carry), timestamps that match the
pattern but name no real instant (30 February), and the sleep session's arithmetic. Every failure
is an `EventValidationError` naming the field and the rule, so a dead-letter record says exactly
what was wrong.

Two compilations of the same schemas: jsonschema-rs (Rust) decides whether an event is valid,
and only for an event it refuses does fastjsonschema (generated Python) find the field and rule
to report. Nearly every event is valid, and the Rust check costs a quarter of the Python one.
The tests hold both to the same verdict on every kind of broken event.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache, lru_cache
from typing import Any, Final

import fastjsonschema
import jsonschema_rs
import orjson

from stream.catalog import EVENT_TYPES
from stream.errors import EventValidationError
from stream.settings import project_folder

Event = dict[str, Any]


SCHEMA_DIR: Final = project_folder("schemas")
SCHEMA_BASE_URI: Final = "https://schemas.aurora.invalid/events/"
SCHEMA_VERSION: Final = 1
# Largest message accepted, checked on the raw bytes before any parsing. A valid v1 event is
# well under 1 KiB (every string is bounded), so this only stops garbage early.
MAX_MESSAGE_BYTES: Final = 16 * 1024
# 2000-01-01T00:00:00Z: an event stamped earlier comes from a reset clock, not from a user.
EARLIEST_EVENT_S: Final = 946_684_800
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

# "$" is the whole message: what a JSON path calls the root.
ROOT: Final = "$"
# Longest unknown property name quoted back in an error; the rest is cut, as it is attacker text.
_MAX_NAME_IN_ERROR: Final = 64


@cache
def load_schema(name: str) -> Mapping[str, Any]:
    """One schema document by file stem ("envelope.v1", "sleep.v1"), parsed once."""
    document: dict[str, Any] = orjson.loads((SCHEMA_DIR / f"{name}.json").read_bytes())
    return document


def _local_schema(uri: str) -> Mapping[str, Any]:
    # Resolve $refs from schemas/ only: compiling must never reach the network.
    if not uri.startswith(SCHEMA_BASE_URI):
        raise ValueError(f"$ref to {uri} is outside {SCHEMA_BASE_URI}")
    name = uri.removeprefix(SCHEMA_BASE_URI).removesuffix(".json")
    if not re.fullmatch(r"[a-z]+\.v[0-9]+", name):
        raise ValueError(f"$ref to {uri} names no schema file")
    return load_schema(name)


@cache
def _validators() -> dict[str, Callable[[Event], Event]]:
    return {
        event_type: fastjsonschema.compile(
            dict(load_schema(f"{event_type}.v{SCHEMA_VERSION}")),
            handlers={"https": _local_schema},
            # No defaults: validation must never change the event it checks.
            use_default=False,
            # date-time and uuid are annotations; the patterns and parse_timestamp enforce them.
            use_formats=False,
        )
        for event_type in EVENT_TYPES
    }


@cache
def _checks() -> dict[str, Callable[[Event], bool]]:
    """Per event type, whether an event meets its schema: the verdict, with no details."""
    # Every schema by its $id, so $refs resolve from schemas/ and never from the network.
    registry = jsonschema_rs.Registry(
        [
            (f"{SCHEMA_BASE_URI}{path.stem}.json", dict(load_schema(path.stem)))
            for path in sorted(SCHEMA_DIR.glob("*.v*.json"))
        ]
    )
    return {
        event_type: jsonschema_rs.validator_for(
            dict(load_schema(f"{event_type}.v{SCHEMA_VERSION}")),
            registry=registry,
            # As in _validators: the patterns and parse_timestamp enforce the formats.
            validate_formats=False,
        ).is_valid
        for event_type in EVENT_TYPES
    }


def _meets_schema(event: Event, event_type: str) -> bool:
    try:
        return _checks()[event_type](event)
    except ValueError:
        # A value JSON has no form for (a set, a non-string key): fastjsonschema says what.
        return False


@cache
def _timestamp_pattern() -> re.Pattern[str]:
    pattern: str = load_schema(f"envelope.v{SCHEMA_VERSION}")["$defs"]["timestamp"]["pattern"]
    return re.compile(pattern)


def parse_timestamp(text: str) -> datetime:
    """Parse an RFC 3339 date-time with an offset into an aware datetime, or raise ValueError."""
    if not _timestamp_pattern().fullmatch(text):
        raise ValueError(f"{text[:40]!r} is not an RFC 3339 date-time with an offset")
    try:
        moment, _ = _real_instant(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} {exc}") from None
    return moment


# One event's timestamp is read three times in a row (its semantic checks, the worker's
# clock check, its tile), and each read took a parse and an aware subtraction: about 2 us an
# event. The cache holds the last few texts read, so the second and third reads are lookups.
@lru_cache(maxsize=256)
def _instant(text: str) -> tuple[datetime, int]:
    moment = datetime.fromisoformat(text)
    if moment.year in (1, 9999):
        # Year 1 at +05:00 exists only before the offset is applied: it has no place on the
        # UTC time line (astimezone raises), so window arithmetic could not hold it.
        moment.astimezone(UTC)
    return moment, to_us(moment)


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch, exactly (no float rounding)."""
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> datetime:
    """The UTC instant `us` microseconds after the epoch: `to_us`'s inverse, exactly."""
    return EPOCH + timedelta(microseconds=us)


def _real_instant(text: str) -> tuple[datetime, float]:
    # The caller has matched the pattern; what is left is whether the fields name a real instant.
    # The POSIX seconds come along because comparing aware datetimes of different offsets is
    # several times slower than comparing floats, and validation runs once per message.
    try:
        moment, us = _instant(text)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"is not a real date-time ({exc})") from exc
    return moment, us / 1_000_000


def validate(event: Event) -> Event:
    """Check one event against its schema and the semantic rules; return it unchanged."""
    return _validate(event, parsed=False)


def _validate(event: Event, parsed: bool) -> Event:
    # `parsed`: the event came from orjson.loads, which refuses NaN, Infinity and numbers that
    # overflow a double, and never makes a Decimal: its numbers need no second look.
    if not isinstance(event, dict):
        raise EventValidationError(ROOT, "type", "must be a JSON object")
    if "event_type" not in event:
        raise EventValidationError("event_type", "required", "is missing")
    event_type = event["event_type"]
    if not isinstance(event_type, str):
        raise EventValidationError("event_type", "type", "must be a string")
    validator = _validators().get(event_type)
    if validator is None:
        raise EventValidationError("event_type", "enum", f"must be one of {list(EVENT_TYPES)}")
    if not parsed:
        _check_numbers(event, event_type)
    if not _meets_schema(event, event_type):
        try:
            validator(event)
        except fastjsonschema.JsonSchemaValueException as exc:
            raise _schema_error(exc, event_type) from None
        # The two compilations disagree: the stricter verdict stands, named as best it can be.
        raise EventValidationError(ROOT, "schema", "does not meet its schema", event_type)
    check_semantics(event)
    return event


def decode(raw: bytes) -> Event:
    """Turn one Kafka message value into a validated event."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise EventValidationError(
            ROOT, "size", f"is {len(raw)} bytes, more than the {MAX_MESSAGE_BYTES} allowed"
        )
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        # orjson rejects invalid UTF-8, lone surrogates, NaN and Infinity here as well.
        raise EventValidationError(ROOT, "json", f"is not UTF-8 JSON: {exc}") from None
    if not isinstance(event, dict):
        raise EventValidationError(ROOT, "type", "must be a JSON object")
    return _validate(event, parsed=True)


def encode(event: Event) -> bytes:
    """Serialise a (validated) event into a Kafka message value."""
    # orjson writes NaN and Infinity as null, which would turn a bad reading into a missing one.
    _check_numbers(event, _type_of(event) or "unknown")
    try:
        raw = orjson.dumps(event)
    except orjson.JSONEncodeError as exc:
        raise EventValidationError(
            ROOT, "json", f"cannot be encoded as JSON: {exc}", _type_of(event)
        ) from None
    if len(raw) > MAX_MESSAGE_BYTES:
        raise EventValidationError(
            ROOT,
            "size",
            f"encodes to {len(raw)} bytes, more than the {MAX_MESSAGE_BYTES} allowed",
            _type_of(event),
        )
    return raw


def event_seconds(event: Event) -> float:
    """POSIX seconds of a validated event's event_timestamp."""
    return _instant(event["event_timestamp"])[1] / 1_000_000


def instant_us(text: str) -> int:
    """Microseconds since the epoch of a valid RFC 3339 date-time, exactly (no float)."""
    return _instant(text)[1]


def check_semantics(event: Event) -> None:
    """The rules past the schema; `event` must already have passed its schema."""
    event_type: str = event["event_type"]
    when = _timestamp(event["event_timestamp"], "event_timestamp", event_type)
    if when < EARLIEST_EVENT_S:
        raise EventValidationError(
            "event_timestamp",
            "range",
            "is before 2000-01-01T00:00:00Z; no device this app reads from recorded earlier",
            event_type,
        )
    if event_type == "sleep":
        _check_sleep(event["payload"], when)


def _check_sleep(payload: Mapping[str, Any], when: float) -> None:
    start = _timestamp(payload["sleep_start"], "payload.sleep_start", "sleep")
    end = _timestamp(payload["sleep_end"], "payload.sleep_end", "sleep")
    if not end > start:
        raise EventValidationError(
            "payload.sleep_end", "semantic", "must be after payload.sleep_start", "sleep"
        )
    if when != end:
        raise EventValidationError(
            "event_timestamp",
            "semantic",
            "must be the wake time, the same instant as payload.sleep_end",
            "sleep",
        )
    span_minutes = (end - start) / 60
    duration = payload["duration_minutes"]
    # One minute of slack: devices round the stage and total minutes separately.
    if duration > span_minutes + 1:
        raise EventValidationError(
            "payload.duration_minutes",
            "semantic",
            f"({duration:g}) must not exceed the {span_minutes:g} minutes from sleep_start to "
            "sleep_end",
            "sleep",
        )
    stages = (
        payload["deep_sleep_minutes"]
        + payload["rem_sleep_minutes"]
        + payload["light_sleep_minutes"]
    )
    if stages > duration + 1:
        raise EventValidationError(
            "payload",
            "semantic",
            f"deep + rem + light sleep ({stages:g}) must not exceed duration_minutes "
            f"({duration:g})",
            "sleep",
        )


def _timestamp(text: str, field: str, event_type: str) -> float:
    try:
        return _real_instant(text)[1]
    except ValueError as exc:
        raise EventValidationError(field, "format", str(exc), event_type) from None


def _check_numbers(event: Event, event_type: str) -> None:
    # float("nan") passes "type": "number" and every minimum/maximum comparison, so the schema
    # alone would let it through; JSON has no such numbers, hence the rule "type". Decimal passes
    # the schema too, but its NaN raises on comparison and orjson cannot encode it. Only the
    # payload holds numbers: a NaN schema_version fails its const.
    payload = event.get("payload")
    if not isinstance(payload, dict):
        return
    for key, value in payload.items():
        if value.__class__ is float:
            if not math.isfinite(value):
                raise EventValidationError(
                    f"payload.{key}",
                    "type",
                    "must be a finite number (NaN and Infinity are not JSON)",
                    event_type,
                )
        elif isinstance(value, Decimal):
            raise EventValidationError(
                f"payload.{key}", "type", "must be an int or a float, not a Decimal", event_type
            )


def _schema_error(
    exc: fastjsonschema.JsonSchemaValueException, event_type: str
) -> EventValidationError:
    name: str = exc.name or "data"
    path = name.removeprefix("data").lstrip(".")
    rule: str = exc.rule or "schema"
    detail = exc.message.removeprefix(name).strip()
    value = exc.value
    definition = exc.definition if isinstance(exc.definition, dict) else {}
    if rule == "required" and isinstance(value, dict):
        missing = [key for key in definition.get("required", ()) if key not in value]
        if missing:
            path = _join(path, missing[0])
            detail = "is missing"
    elif rule == "additionalProperties" and isinstance(value, dict):
        unknown = sorted(str(key) for key in value if key not in definition.get("properties", {}))
        if unknown:
            path = _join(path, unknown[0][:_MAX_NAME_IN_ERROR])
            detail = "is not a field of the schema"
    return EventValidationError(path or ROOT, rule, detail, event_type)


def _join(parent: str, key: str) -> str:
    return f"{parent}.{key}" if parent else key


def _type_of(event: Event) -> str | None:
    event_type = event.get("event_type")
    return event_type if isinstance(event_type, str) and event_type in EVENT_TYPES else None
