"""The event contract: schemas, validate/decode/encode, and the generator's ground truth."""

from __future__ import annotations

import contextlib
import copy
import pickle
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import fastjsonschema
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.catalog import EVENT_TYPES, EXERCISE_TYPES_COUNT
from stream.core import events
from stream.core.events import (
    MAX_MESSAGE_BYTES,
    SCHEMA_DIR,
    decode,
    encode,
    load_schema,
    parse_timestamp,
    validate,
)
from stream.errors import EventValidationError
from stream.synth.generator import GeneratorConfig, generate

START = datetime(2024, 3, 4, tzinfo=UTC)


def base(event_type: str) -> dict[str, Any]:
    """One valid event of each type."""
    envelope = {
        "event_id": "3f2b8c1e-9d4a-4e7b-8c2d-1a2b3c4d5e6f",
        "user_id": "u00042",
        "event_type": event_type,
        "event_timestamp": "2024-03-04T07:30:00+01:00",
        "schema_version": 1,
        "source_app": "aurora-ios",
    }
    payloads: dict[str, dict[str, Any]] = {
        "activity": {
            "activity_type": "reading",
            "duration_minutes": 45,
            "energy_level": 6,
            "mood": 7,
        },
        "sleep": {
            "sleep_start": "2024-03-03T23:10:00+01:00",
            "sleep_end": "2024-03-04T07:30:00+01:00",
            "duration_minutes": 470.5,
            "deep_sleep_minutes": 80.0,
            "rem_sleep_minutes": 100.0,
            "light_sleep_minutes": 280.0,
            "awake_minutes": 29.5,
        },
        "exercise": {
            "exercise_type": "running",
            "duration_minutes": 42,
            "intensity": "high",
            "energy_after": 8,
            "calories": 430,
        },
        "social": {"action": "like_given", "target_user_id": "u00007", "content_id": "post-1"},
        "sync": {
            "provider": "oura",
            "status": "success",
            "records_synced": 1200,
            "heart_rate_avg": 61.5,
            "steps": 9100,
            "active_calories": 420.0,
        },
    }
    return {**envelope, "payload": payloads[event_type]}


def test_every_base_event_is_valid_and_round_trips() -> None:
    for event_type in EVENT_TYPES:
        event = base(event_type)
        assert validate(event) is event
        assert decode(encode(event)) == event


def test_schema_files_follow_the_house_rules() -> None:
    names = sorted(path.name for path in SCHEMA_DIR.glob("*.json"))
    assert names == sorted([*(f"{t}.v1.json" for t in EVENT_TYPES), "envelope.v1.json"])
    for name in names:
        schema = load_schema(name.removesuffix(".json"))
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["$id"].endswith(f"/{name}") and schema["title"] and schema["description"]
        if name == "envelope.v1.json":
            continue
        assert schema["additionalProperties"] is False
        payload = schema["properties"]["payload"]
        assert payload["additionalProperties"] is False
        for prop in [*schema["properties"].values(), *payload["properties"].values()]:
            assert prop.get("description"), f"{name}: a property has no description"
        assert schema["properties"]["event_type"]["const"] == name.split(".")[0]


def test_optional_user_id_has_the_user_id_pattern() -> None:
    defs = load_schema("envelope.v1")["$defs"]
    assert defs["optional_user_id"]["pattern"] == defs["user_id"]["pattern"]


def test_exercise_types_match_the_catalog() -> None:
    props = load_schema("exercise.v1")["properties"]["payload"]["properties"]
    assert len(props["exercise_type"]["enum"]) == EXERCISE_TYPES_COUNT == 8


def test_optional_fields_may_be_absent_or_null() -> None:
    for event_type, field in [
        ("exercise", "calories"),
        ("social", "target_user_id"),
        ("social", "content_id"),
        ("sync", "heart_rate_avg"),
        ("sync", "steps"),
        ("sync", "active_calories"),
    ]:
        event = base(event_type)
        event["payload"][field] = None
        validate(event)
        del event["payload"][field]
        validate(event)


Mutation = Callable[[dict[str, Any]], None]


def put(path: str, value: Any) -> Mutation:
    def mutate(event: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = event
        for key in parents:
            target = target[key]
        target[last] = value

    return mutate


def drop(path: str) -> Mutation:
    def mutate(event: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = event
        for key in parents:
            target = target[key]
        del target[last]

    return mutate


# (id, event type, mutation, expected field, expected rule)
BAD_EVENTS: list[tuple[str, str, Mutation, str, str]] = [
    ("missing event_id", "activity", drop("event_id"), "event_id", "required"),
    ("missing payload field", "activity", drop("payload.mood"), "payload.mood", "required"),
    ("missing payload", "sync", drop("payload"), "payload", "required"),
    ("missing event_type", "sleep", drop("event_type"), "event_type", "required"),
    ("unknown event_type", "sleep", put("event_type", "nap"), "event_type", "enum"),
    ("event_type not a string", "sleep", put("event_type", ["sleep"]), "event_type", "type"),
    ("energy above 10", "activity", put("payload.energy_level", 11), "payload.energy_level",
     "maximum"),
    ("mood below 1", "activity", put("payload.mood", 0), "payload.mood", "minimum"),
    ("fractional mood", "activity", put("payload.mood", 6.5), "payload.mood", "type"),
    ("duration as string", "exercise", put("payload.duration_minutes", "45"),
     "payload.duration_minutes", "type"),
    ("boolean is no integer", "exercise", put("payload.energy_after", True),
     "payload.energy_after", "type"),
    ("exercise too long", "exercise", put("payload.duration_minutes", 601),
     "payload.duration_minutes", "maximum"),
    ("unknown exercise type", "exercise", put("payload.exercise_type", "Running"),
     "payload.exercise_type", "enum"),
    ("calories negative", "exercise", put("payload.calories", -1), "payload.calories", "minimum"),
    ("unknown social action", "social", put("payload.action", "share"), "payload.action", "enum"),
    ("content_id empty", "social", put("payload.content_id", ""), "payload.content_id",
     "minLength"),
    ("huge content_id", "social", put("payload.content_id", "x" * 10_000), "payload.content_id",
     "maxLength"),
    ("hostile target", "social", put("payload.target_user_id", "../../etc/passwd"),
     "payload.target_user_id", "pattern"),
    ("heart rate too low", "sync", put("payload.heart_rate_avg", 10), "payload.heart_rate_avg",
     "minimum"),
    ("negative records", "sync", put("payload.records_synced", -1), "payload.records_synced",
     "minimum"),
    ("unknown provider", "sync", put("payload.provider", "polar"), "payload.provider", "enum"),
    ("NaN", "sync", put("payload.heart_rate_avg", float("nan")), "payload.heart_rate_avg", "type"),
    ("Infinity", "sleep", put("payload.awake_minutes", float("inf")), "payload.awake_minutes",
     "type"),
    ("-Infinity", "activity", put("payload.duration_minutes", float("-inf")),
     "payload.duration_minutes", "type"),
    ("SQL in user_id", "activity", put("user_id", "'; DROP TABLE x;--"), "user_id", "pattern"),
    ("path in user_id", "activity", put("user_id", "../../etc/passwd"), "user_id", "pattern"),
    ("newline after user_id", "activity", put("user_id", "u00042\n"), "user_id", "pattern"),
    ("huge user_id", "activity", put("user_id", "u" * 100_000), "user_id", "pattern"),
    ("upper-case event_id", "activity", put("event_id", "3F2B8C1E-9D4A-4E7B-8C2D-1A2B3C4D5E6F"),
     "event_id", "pattern"),
    ("source_app upper case", "activity", put("source_app", "Aurora-iOS"), "source_app",
     "pattern"),
    ("source_app too long", "activity", put("source_app", "a" * 65), "source_app", "maxLength"),
    ("timestamp without offset", "activity", put("event_timestamp", "2024-03-04T07:30:00"),
     "event_timestamp", "pattern"),
    ("timestamp as epoch", "activity", put("event_timestamp", 1709533800), "event_timestamp",
     "type"),
    ("timestamp 30 February", "activity", put("event_timestamp", "2024-02-30T07:30:00Z"),
     "event_timestamp", "format"),
    ("timestamp offset 25h", "activity", put("event_timestamp", "2024-03-04T07:30:00+25:00"),
     "event_timestamp", "format"),
    ("timestamp leap second", "activity", put("event_timestamp", "2024-03-04T23:59:60Z"),
     "event_timestamp", "format"),
    ("unknown envelope field", "social", put("device", "Pixel"), "device",
     "additionalProperties"),
    ("unknown payload field", "social", put("payload.notes", "hi"), "payload.notes",
     "additionalProperties"),
    ("schema_version 2", "sync", put("schema_version", 2), "schema_version", "const"),
    ("schema_version as string", "sync", put("schema_version", "1"), "schema_version", "const"),
    ("event_type of another schema", "sleep", put("event_type", "activity"),
     "payload.activity_type", "required"),
    ("sleep_end before sleep_start", "sleep", put("payload.sleep_end",
     "2024-03-03T22:00:00+01:00"), "payload.sleep_end", "semantic"),
    ("sleep not ending at event time", "sleep", put("event_timestamp", "2024-03-04T08:30:00+01:00"),
     "event_timestamp", "semantic"),
    ("asleep longer than in bed", "sleep", put("payload.duration_minutes", 600),
     "payload.duration_minutes", "semantic"),
    ("stages exceed asleep", "sleep", put("payload.light_sleep_minutes", 400), "payload",
     "semantic"),
    ("sleep start not a real date", "sleep", put("payload.sleep_start", "2024-02-31T23:00:00Z"),
     "payload.sleep_start", "format"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("event_type", "mutate", "field", "rule"),
    [row[1:] for row in BAD_EVENTS],
    ids=[row[0] for row in BAD_EVENTS],
)
def test_bad_event_names_field_and_rule(
    event_type: str, mutate: Mutation, field: str, rule: str
) -> None:
    event = base(event_type)
    mutate(event)
    with pytest.raises(EventValidationError) as caught:
        validate(event)
    error = caught.value
    assert (error.field, error.rule) == (field, rule), str(error)
    assert field in str(error) and rule in str(error)
    if error.field != "event_type":
        assert error.event_type == event["event_type"]
    # Hostile values are never echoed back into logs and dead-letter records.
    assert "DROP TABLE" not in str(error) and len(str(error)) < 400


NON_FINITE = ("NaN", "Infinity", "-Infinity")


def test_bad_events_fail_decode_the_same_way() -> None:
    for name, event_type, mutate, field, rule in BAD_EVENTS:
        if name in NON_FINITE:
            continue  # JSON cannot carry them: see the next test and test_undecodable_messages
        event = base(event_type)
        mutate(event)
        raw = orjson.dumps(event)
        if len(raw) > MAX_MESSAGE_BYTES:
            field, rule = "$", "size"  # refused on its length before anything is parsed
        with pytest.raises(EventValidationError) as caught:
            decode(raw)
        assert (caught.value.field, caught.value.rule) == (field, rule), name


def test_encode_refuses_non_finite_numbers_instead_of_writing_null() -> None:
    for name, event_type, mutate, field, _ in BAD_EVENTS:
        if name not in NON_FINITE:
            continue
        event = base(event_type)
        mutate(event)
        # What a careless client gets from orjson: null where the reading was.
        assert b"null" in orjson.dumps(event)
        with pytest.raises(EventValidationError) as caught:
            encode(event)
        assert (caught.value.field, caught.value.rule) == (field, "type")


@pytest.mark.parametrize(
    ("raw", "rule"),
    [
        (b'{"event_id": NaN}', "json"),
        (b'{"payload": {"mood": Infinity}}', "json"),
        # A number past a double is refused as it is parsed: decode's events never hold an
        # infinity, so their numbers are not checked a second time.
        (b'{"payload": {"mood": 1e400}}', "json"),
        (b'{"payload": {"mood": -1e400}}', "json"),
        (b'{"user_id": "caf\xe9"}', "json"),
        (b'{"user_id": "\xed\xa0\x80"}', "json"),  # a UTF-16 surrogate encoded as UTF-8
        (b'{"event_type": "activity"', "json"),
        (b"", "json"),
        (b"[1, 2, 3]", "type"),
        (b'"activity"', "type"),
        (b"null", "type"),
        (b" " * (MAX_MESSAGE_BYTES + 1), "size"),
    ],
    ids=["NaN", "Infinity", "overflow", "-overflow", "latin-1", "surrogate", "truncated",
         "empty", "array", "string", "null", "oversize"],
)  # fmt: skip
def test_undecodable_messages(raw: bytes, rule: str) -> None:
    with pytest.raises(EventValidationError) as caught:
        decode(raw)
    assert (caught.value.field, caught.value.rule) == ("$", rule)
    assert caught.value.event_type is None


def test_size_is_checked_before_parsing() -> None:
    event = base("activity")
    raw = encode(event)
    padded = raw[:-1] + b" " * (MAX_MESSAGE_BYTES - len(raw)) + b"}"
    assert len(padded) == MAX_MESSAGE_BYTES
    assert decode(padded) == event
    with pytest.raises(EventValidationError, match="size"):
        decode(padded + b" ")


def test_non_objects_and_exotic_python_values_are_refused() -> None:
    not_objects: list[Any] = [None, [], "x", 3]
    for value in not_objects:
        with pytest.raises(EventValidationError) as caught:
            validate(value)
        assert caught.value.rule == "type"
    event = base("sync")
    event["payload"]["heart_rate_avg"] = Decimal("NaN")
    with pytest.raises(EventValidationError, match=r"payload\.heart_rate_avg"):
        validate(event)


def test_validate_does_not_change_the_event() -> None:
    for event_type in EVENT_TYPES:
        event = base(event_type)
        del event["payload"][next(iter(event["payload"]))]
        before = copy.deepcopy(event)
        with pytest.raises(EventValidationError):
            validate(event)
        assert event == before


def test_error_pickles_with_its_fields() -> None:
    error = EventValidationError("payload.mood", "maximum", "too big", "activity", 3)
    again = pickle.loads(pickle.dumps(error))  # noqa: S301 (our own bytes)
    assert (again.field, again.rule, again.event_type, again.index) == (
        "payload.mood",
        "maximum",
        "activity",
        3,
    )
    assert str(again) == str(error) == "activity event #3: payload.mood too big (rule: maximum)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-04T07:30:00Z", datetime(2024, 3, 4, 7, 30, tzinfo=UTC)),
        ("2024-03-04T07:30:00.5+05:30", datetime(2024, 3, 4, 2, 0, 0, 500000, tzinfo=UTC)),
        ("2024-03-04T07:30:00.123456789-05:00",
         datetime(2024, 3, 4, 12, 30, 0, 123456, tzinfo=UTC)),
        ("2024-03-04T07:30:00-00:00", datetime(2024, 3, 4, 7, 30, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_parse_timestamp(text: str, expected: datetime) -> None:
    parsed = parse_timestamp(text)
    assert parsed == expected and parsed.tzinfo is not None


@pytest.mark.parametrize(
    "text",
    [
        "2024-03-04T07:30:00",
        "2024-03-04 07:30:00Z",
        "2024-03-04T07:30Z",
        "2024-03-04t07:30:00z",
        "2024-03-04T07:30:00+0100",
        "2024-03-04T07:30:00Z\n",
        "\uff12\uff10\uff12\uff14-03-04T07:30:00Z",  # full-width digits match \d, not [0-9]
        "2024-13-04T07:30:00Z",
        "0001-01-01T00:00:00+05:00",
    ],
)
def test_parse_timestamp_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(text)


def test_offsets_are_kept() -> None:
    parsed = parse_timestamp("2024-03-04T07:30:00+05:30")
    assert parsed.utcoffset() == timedelta(hours=5, minutes=30)
    assert parsed.tzinfo == timezone(timedelta(hours=5, minutes=30))


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_generator_ground_truth_matches_the_validator(seed: int) -> None:
    config = GeneratorConfig(
        users=40,
        days=3,
        seed=seed,
        start=START,
        out_of_order=0.1,
        duplicates=0.05,
        invalid=0.15,
    )
    counts = {True: 0, False: 0}
    for generated in generate(config):
        counts[generated.valid] += 1
        if generated.valid:
            assert decode(generated.raw) == generated.event
            assert generated.event is not None
            assert validate(copy.deepcopy(generated.event)) == generated.event
        else:
            with pytest.raises(EventValidationError):
                decode(generated.raw)
    assert counts[True] > 1000 and counts[False] > 100


def test_every_breakage_kind_is_rejected() -> None:
    from stream.synth.invalid import KINDS

    config = GeneratorConfig(users=60, days=4, seed=9, start=START, invalid=0.5)
    seen = {g.breakage for g in generate(config) if not g.valid}
    assert seen == set(KINDS)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_decode_refuses_arbitrary_bytes_with_its_own_error(raw: bytes) -> None:
    try:
        decode(raw)
    except EventValidationError:
        return
    raise AssertionError("random bytes decoded as an event")


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=10), children, max_size=4)
        ),
        max_leaves=20,
    ),
    st.sampled_from(EVENT_TYPES),
)
def test_validate_only_ever_raises_its_own_error(junk: Any, event_type: str) -> None:
    event = base(event_type)
    event["payload"] = {**event["payload"], "duration_minutes": junk}
    with contextlib.suppress(EventValidationError):
        validate(event)


def _resolved(definition: dict[str, Any]) -> dict[str, Any]:
    ref = definition.get("$ref")
    if ref is None:
        return definition
    document, _, pointer = ref.partition("#")
    target: Any = load_schema(document.rpartition("/")[2].removesuffix(".json"))
    for part in pointer.strip("/").split("/"):
        target = target[part]
    return {**definition, **target}


def _probes(definition: dict[str, Any]) -> list[Any]:
    """Values at and around each bound a field's schema sets, and of every wrong kind."""
    spec = _resolved(definition)
    values: list[Any] = [None, True, False, 0, 1, -1, 0.5, 1.0, 2**63, -(2**63) - 1, 1e300]
    values += ["", "x", "x\n", "x" * 65, "x" * 300, [], [1], {}, {"a": 1}]
    for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if key in spec:
            bound = spec[key]
            values += [bound - 1, bound - 0.5, bound, float(bound), bound + 0.5, bound + 1]
    for key in ("minLength", "maxLength"):
        if key in spec:
            values += ["a" * n for n in (spec[key] - 1, spec[key], spec[key] + 1) if n >= 0]
    for option in (*spec.get("enum", ()), *(["const"] if "const" in spec else [])):
        option = spec["const"] if option == "const" else option
        values += [option, f"{option}x", str(option).upper()]
    return values


def _verdicts(event: dict[str, Any]) -> tuple[bool, bool]:
    event_type = event["event_type"] if event.get("event_type") in EVENT_TYPES else "activity"
    native = events._checks()[event_type](event)
    try:
        events._validators()[event_type](event)
    except fastjsonschema.JsonSchemaValueException:
        return native, False
    return native, True


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_the_native_verdict_is_the_python_one(event_type: str) -> None:
    # stream/core/events.py lets jsonschema-rs decide validity and asks fastjsonschema only why an
    # event failed: an event one accepts and the other refuses would be let through, or refused
    # with no field named. Every field of the event, envelope and payload, takes every probe of
    # its own schema's bounds, and goes missing; an unknown field joins each level.
    schema = load_schema(f"{event_type}.v1")
    levels = [
        ((), schema["properties"]),
        (("payload",), schema["properties"]["payload"]["properties"]),
    ]
    cases = 0
    for path, properties in levels:
        for name, definition in properties.items():
            for value in [*_probes(definition), "__delete__"]:
                event = base(event_type)
                place = event["payload"] if path else event
                if value == "__delete__":
                    place.pop(name, None)
                else:
                    place[name] = value
                native, python = _verdicts(event)
                assert native == python, (name, value, native)
                cases += 1
        event = base(event_type)
        (event["payload"] if path else event)["unknown_field"] = 1
        assert _verdicts(event) == (False, False)
    assert cases > 200


def test_an_event_the_native_check_refuses_is_refused_with_its_field() -> None:
    event = base("activity")
    event["payload"]["mood"] = 11  # above its maximum
    assert not events._checks()["activity"](event)
    with pytest.raises(EventValidationError) as caught:
        validate(event)
    assert (caught.value.field, caught.value.rule) == ("payload.mood", "maximum")


@pytest.mark.parametrize(
    "us", [0, 1, 999_999, 1_000_000, 1_764_000_000_123_456, -1, -1_000_001, 253_402_300_799_999_999]
)
def test_from_us_is_the_exact_inverse_of_to_us(us: int) -> None:
    moment = events.from_us(us)
    assert moment.tzinfo is UTC
    assert events.to_us(moment) == us
    seconds, micros = divmod(us, 1_000_000)
    assert moment == datetime.fromtimestamp(seconds, UTC).replace(microsecond=micros)
