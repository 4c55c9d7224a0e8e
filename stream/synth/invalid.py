"""Realistic ways a client breaks an event: each gives bytes the contract rejects.

The bounds, enums and required fields come from the schemas themselves, so a broken event stays
broken when the contract changes.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from stream.core.events import SCHEMA_VERSION, Event, load_schema


@dataclass(frozen=True, slots=True)
class Broken:
    """The bytes a broken client sends, and the user id a reader could still find in them."""

    raw: bytes
    kind: str
    user_id: str | None


def break_event(event: Event, rng: random.Random) -> Broken:
    """One realistic breakage of `event` (left untouched), chosen with `rng`."""
    kind = rng.choices(KINDS, _WEIGHTS)[0]
    broken = {**event, "payload": dict(event["payload"])}
    if kind == "malformed_json":
        raw = orjson.dumps(event)
        # A client that died mid-write: any proper prefix of an object is invalid JSON.
        return Broken(raw[: rng.randrange(1, len(raw))], kind, None)
    if kind == "non_utf8":
        raw = orjson.dumps(event)
        # A client that wrote its text in Latin-1: "café" with a lone 0xE9 byte.
        return Broken(raw[:-1] + b',"note":"caf\xe9"}', kind, None)
    if not _MUTATIONS[kind](broken, rng):
        kind = "missing_field"
        _missing_field(broken, rng)
    user_id = broken.get("user_id")
    return Broken(orjson.dumps(broken), kind, user_id if isinstance(user_id, str) else None)


def _payload_schema(event_type: str) -> Mapping[str, Any]:
    schema = load_schema(f"{event_type}.v{SCHEMA_VERSION}")
    payload: Mapping[str, Any] = schema["properties"]["payload"]
    return payload


def _missing_field(event: Event, rng: random.Random) -> bool:
    required = [("payload", key) for key in _payload_schema(event["event_type"])["required"]]
    required += [("", key) for key in ("event_id", "user_id", "event_timestamp", "source_app")]
    where, key = rng.choice(required)
    (event["payload"] if where else event).pop(key, None)
    return True


def _wrong_type(event: Event, rng: random.Random) -> bool:
    payload = event["payload"]
    key = rng.choice(_payload_schema(event["event_type"])["required"])
    value = payload[key]
    # Numbers sent as strings ("45") and strings sent as numbers are what loose clients do.
    payload[key] = str(value) if isinstance(value, int | float) else len(value)
    return True


def _out_of_range(event: Event, rng: random.Random) -> bool:
    props = _payload_schema(event["event_type"])["properties"]
    bounded = [key for key, spec in props.items() if "maximum" in spec]
    if not bounded:
        return False
    key = rng.choice(bounded)
    spec = props[key]
    integer = "integer" in spec["type"]
    if rng.random() < 0.5:
        value: float = spec["maximum"] + rng.randint(1, 100)
    else:
        value = spec["minimum"] - rng.randint(1, 100)
    event["payload"][key] = int(value) if integer else value + 0.5
    return True


def _bad_enum(event: Event, rng: random.Random) -> bool:
    props = _payload_schema(event["event_type"])["properties"]
    enums = [key for key, spec in props.items() if "enum" in spec]
    if not enums:
        return False
    key = rng.choice(enums)
    value = event["payload"][key]
    # Every variant differs from the lower-case original: capitalised, padded, shouted.
    event["payload"][key] = rng.choice((value.capitalize(), f"{value} ", value.upper()))
    return True


def _unknown_field(event: Event, rng: random.Random) -> bool:
    if rng.random() < 0.5:
        event["device_model"] = "Pixel 8"
    else:
        event["payload"]["notes"] = "felt great"
    return True


def _bad_timestamp(event: Event, rng: random.Random) -> bool:
    text: str = event["event_timestamp"]
    local = text.removesuffix("Z")[:19]
    event["event_timestamp"] = rng.choice(
        (
            local,  # no offset: the classic naive-datetime bug
            local.replace("T", " ") + text[19:],
            f"{local[:10]}",
            1_714_550_400_000,  # epoch milliseconds
        )
    )
    return True


def _bad_event_id(event: Event, rng: random.Random) -> bool:
    upper = event["event_id"].upper()
    # Swift's UUID().uuidString is upper case; an all-digit id would not change, so drop dashes.
    event["event_id"] = upper if upper != event["event_id"] else upper.replace("-", "")
    return True


def _wrong_schema_version(event: Event, rng: random.Random) -> bool:
    event["schema_version"] = rng.choice((2, "1", 0))
    return True


def _sleep_reversed(event: Event, rng: random.Random) -> bool:
    if event["event_type"] != "sleep":
        return False
    payload = event["payload"]
    payload["sleep_start"], payload["sleep_end"] = payload["sleep_end"], payload["sleep_start"]
    return True


_MUTATIONS: Final[dict[str, Callable[[Event, random.Random], bool]]] = {
    "missing_field": _missing_field,
    "wrong_type": _wrong_type,
    "out_of_range": _out_of_range,
    "bad_enum": _bad_enum,
    "unknown_field": _unknown_field,
    "bad_timestamp": _bad_timestamp,
    "bad_event_id": _bad_event_id,
    "wrong_schema_version": _wrong_schema_version,
    "sleep_reversed": _sleep_reversed,
}
KINDS: Final = (*_MUTATIONS, "malformed_json", "non_utf8")
_WEIGHTS: Final = (14, 12, 14, 8, 10, 12, 6, 4, 5, 8, 7)
