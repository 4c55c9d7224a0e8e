"""Hypothesis strategies for hostile messages: every one they draw must end in the DLQ.

Each is built from a valid event so that exactly one thing is wrong with it, or is not an event
at all: bytes, broken JSON, NaN and Infinity, wrong types, missing and extra fields, huge strings
and payloads, timestamps from before 2000 or far ahead, and user ids that are SQL, paths, markup
or too long.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import strategies as st

from stream.core.events import MAX_MESSAGE_BYTES, Event

HOSTILE_USER_IDS = [
    "'; DROP TABLE raw_events; --",
    "x' OR '1'='1",
    "Robert'); DELETE FROM user_activity_features; --",
    "../../etc/passwd",
    "..\\..\\windows\\system32",
    "/absolute/path",
    "<script>alert(1)</script>",
    "u\x00null",
    "tab\there",
    "line\nbreak",
    "\u202eevil",
    "emoji-\U0001f600",
    "a" * 65,
    "a" * 100_000,
    "",
    " leading-space",
    "$(rm -rf /)",
    "%00%2e%2e",
    "{{7*7}}",
]

FAR_TIMESTAMPS = [
    "1999-12-31T23:59:59Z",
    "1970-01-01T00:00:00Z",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "2999-01-01T00:00:00+05:30",
]

# Values of a type no field accepts at that place: the schema's fields are strings, numbers,
# integers, booleans, null (optional ones) or the payload object; none takes a list or an object
# with a Mongo-style operator.
_NEVER_VALID = st.sampled_from([[], [1, 2], {"$gt": ""}, {"nested": {"deeper": [None]}}])


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _json_with_token(event: Event, token: str) -> bytes:
    """The event's JSON with one payload number replaced by a token JSON does not have."""
    payload = event["payload"]
    key = next(k for k, v in payload.items() if _is_number(v))
    marked = copy.deepcopy(event)
    marked["payload"][key] = "__TOKEN__"
    return orjson.dumps(marked).replace(b'"__TOKEN__"', token.encode())


def hostile(valid: list[Event]) -> st.SearchStrategy[bytes]:
    """Messages that must be refused; `valid` are events to break (from the generator)."""
    # Indices, not the events themselves: Hypothesis prints a strategy's repr on failure.
    base = st.integers(0, len(valid) - 1).map(valid.__getitem__)
    numeric = [e for e in valid if any(_is_number(v) for v in e["payload"].values())]
    with_numbers = st.integers(0, len(numeric) - 1).map(numeric.__getitem__)
    now = datetime.now(UTC)

    def with_field(event: Event, path: tuple[str, ...], value: Any) -> bytes:
        broken = copy.deepcopy(event)
        target = broken
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return orjson.dumps(broken)

    def without(event: Event, key: str) -> bytes:
        broken = copy.deepcopy(event)
        del broken[key]
        return orjson.dumps(broken)

    envelope_keys = ["event_id", "user_id", "event_type", "event_timestamp", "schema_version",
                     "source_app", "payload"]  # fmt: skip

    return st.one_of(
        st.binary(max_size=512).filter(lambda b: not b.strip().startswith(b"{")),
        base.flatmap(
            lambda e: st.integers(1, len(orjson.dumps(e)) - 1).map(lambda n: orjson.dumps(e)[:n])
        ),
        base.map(lambda e: orjson.dumps(e)[:-1] + b',"note":"caf\xe9"}'),
        st.tuples(with_numbers, st.sampled_from(["NaN", "Infinity", "-Infinity"])).map(
            lambda t: _json_with_token(*t)
        ),
        st.tuples(base, st.sampled_from(envelope_keys)).map(lambda t: without(*t)),
        st.tuples(base, st.sampled_from(envelope_keys), _NEVER_VALID).map(
            lambda t: with_field(t[0], (t[1],), t[2])
        ),
        st.tuples(base, st.text(min_size=1, max_size=20)).map(
            lambda t: with_field(t[0], ("extra_" + t[1],), "surprise")
        ),
        st.tuples(base, st.integers(200, 20_000)).map(
            lambda t: with_field(t[0], ("source_app",), "x" * t[1])
        ),
        base.map(lambda e: with_field(e, ("payload", "padding"), "p" * MAX_MESSAGE_BYTES)),
        st.tuples(base, st.sampled_from(HOSTILE_USER_IDS)).map(
            lambda t: with_field(t[0], ("user_id",), t[1])
        ),
        st.tuples(
            base.filter(lambda e: e["event_type"] != "sleep"),
            st.sampled_from(
                [*FAR_TIMESTAMPS, (now + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")]
            ),
        ).map(lambda t: with_field(t[0], ("event_timestamp",), t[1])),
    )
