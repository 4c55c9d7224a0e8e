"""The synthetic stream: deterministic, defects as asked, and shaped like real users' days."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from functools import cache

import pytest

from stream.catalog import EVENT_TYPES
from stream.core.events import parse_timestamp
from stream.errors import GeneratorConfigError
from stream.synth.generator import (
    MAX_DELAY,
    GeneratedEvent,
    GeneratorConfig,
    default_start,
    generate,
)

START = datetime(2024, 3, 4, tzinfo=UTC)  # a Monday


@cache
def stream(
    users: int = 100,
    days: int = 14,
    seed: int = 7,
    out_of_order: float = 0.0,
    duplicates: float = 0.0,
    invalid: float = 0.0,
) -> tuple[GeneratedEvent, ...]:
    config = GeneratorConfig(users, days, seed, START, out_of_order, duplicates, invalid)
    return tuple(generate(config))


def when(generated: GeneratedEvent) -> datetime:
    assert generated.event is not None
    return parse_timestamp(generated.event["event_timestamp"])


def test_same_arguments_give_the_same_bytes() -> None:
    def run() -> list[tuple[bytes, bool, bool]]:
        config = GeneratorConfig(30, 5, 11, START, 0.1, 0.05, 0.1)
        return [(g.raw, g.valid, g.duplicate) for g in generate(config)]

    first = run()
    assert first == run()
    other = [(g.raw, g.valid, g.duplicate) for g in generate(GeneratorConfig(30, 5, 12, START))]
    assert first != other


def test_defects_leave_the_behaviour_alone() -> None:
    clean = {g.raw for g in stream(users=30, days=5)}
    noisy = stream(users=30, days=5, out_of_order=0.2, duplicates=0.2, invalid=0.2)
    valid = {g.raw for g in noisy if g.valid}
    assert valid <= clean
    assert len(valid) > 0.75 * len(clean)


def test_events_lie_in_the_window_and_in_time_order_without_defects() -> None:
    events = stream()
    times = [when(g) for g in events]
    assert times == sorted(times)
    assert times[0] >= START and times[-1] < START + timedelta(days=14)
    assert {g.event_type for g in events} == set(EVENT_TYPES)
    assert all(g.valid and not g.duplicate for g in events)


def test_fractions_are_roughly_honoured() -> None:
    events = stream(out_of_order=0.05, duplicates=0.03, invalid=0.04)
    originals = sum(1 for g in events if not g.duplicate)
    invalid = sum(1 for g in events if not g.valid) / originals
    duplicates = sum(1 for g in events if g.duplicate) / originals
    assert 0.03 < invalid < 0.05
    assert 0.02 < duplicates < 0.04


def test_out_of_order_share_and_bound() -> None:
    events = stream(out_of_order=0.1)
    newest = datetime.min.replace(tzinfo=UTC)
    late = 0
    for generated in events:
        moment = when(generated)
        if moment < newest:
            late += 1
            # Never more than MAX_DELAY behind, far inside the two days allowed.
            assert newest - moment <= MAX_DELAY < timedelta(days=2)
        newest = max(newest, moment)
    # Delays start at one minute, so a few delayed events are overtaken by nothing.
    assert 0.06 < late / len(events) < 0.11


def test_duplicates_repeat_an_earlier_event_exactly() -> None:
    events = stream(duplicates=0.05)
    seen: dict[str, bytes] = {}
    duplicates = 0
    for generated in events:
        assert generated.event is not None
        event_id = generated.event["event_id"]
        if generated.duplicate:
            duplicates += 1
            assert seen[event_id] == generated.raw
        else:
            assert event_id not in seen
            seen[event_id] = generated.raw
    assert duplicates > 100


def test_invalid_events_carry_their_claimed_type_and_key() -> None:
    events = stream(invalid=0.1)
    bad = [g for g in events if not g.valid]
    assert all(g.event is None and g.breakage for g in bad)
    assert all(g.event_type in EVENT_TYPES and g.key.startswith(b"u") for g in bad)
    unreadable = [g for g in bad if g.breakage in ("malformed_json", "non_utf8")]
    assert unreadable and all(g.user_id is None for g in unreadable)


def test_every_user_keeps_one_offset() -> None:
    offsets: dict[str, set[str]] = defaultdict(set)
    for generated in stream():
        assert generated.event is not None
        text = generated.event["event_timestamp"]
        offsets[generated.event["user_id"]].add(text[-1] if text.endswith("Z") else text[-6:])
    assert all(len(found) == 1 for found in offsets.values())
    assert len(set().union(*offsets.values())) >= 5


def test_sleep_happens_at_night_with_a_few_naps() -> None:
    nights = naps = at_night = 0
    for generated in stream():
        if generated.event_type != "sleep":
            continue
        assert generated.event is not None
        payload = generated.event["payload"]
        start = parse_timestamp(payload["sleep_start"])
        end = parse_timestamp(payload["sleep_end"])
        assert end == when(generated)
        if payload["duration_minutes"] < 120:
            naps += 1
            continue
        nights += 1
        # Local clock times: the offset is the user's own.
        bed_hour, wake_hour = start.hour, end.hour
        at_night += (bed_hour >= 20 or bed_hour < 4) and 3 <= wake_hour <= 12
    assert nights > 1000
    assert at_night / nights > 0.95
    assert 0 < naps < 0.2 * nights


def test_idle_users_go_quiet_for_days() -> None:
    active_days: dict[str, set[int]] = defaultdict(set)
    for generated in stream():
        assert generated.user_id is not None
        active_days[generated.user_id].add((when(generated) - START).days)
    assert len(active_days) >= 95
    gaps = [
        max(b - a for a, b in zip([-1, *sorted(days)], [*sorted(days), 14], strict=True))
        for days in active_days.values()
    ]
    assert sum(1 for gap in gaps if gap >= 3) >= 3


def test_weekends_differ() -> None:
    work = Counter[bool]()
    for generated in stream():
        if generated.event_type == "activity":
            assert generated.event is not None
            weekend = when(generated).weekday() >= 5
            work[weekend] += generated.event["payload"]["activity_type"] == "work"
    # Five weekdays against two weekend days, and far less work at weekends.
    assert work[False] > 8 * work[True]


def test_exercise_social_and_sync_volumes_look_like_people() -> None:
    per_user: dict[str, Counter[str]] = defaultdict(Counter)
    statuses = Counter[str]()
    providers: dict[str, set[str]] = defaultdict(set)
    missing_metrics = 0
    for generated in stream():
        assert generated.event is not None and generated.user_id is not None
        per_user[generated.user_id][generated.event_type] += 1
        if generated.event_type == "sync":
            payload = generated.event["payload"]
            statuses[payload["status"]] += 1
            providers[generated.user_id].add(payload["provider"])
            missing_metrics += any(
                payload.get(m) is None for m in ("heart_rate_avg", "steps", "active_calories")
            )
    weekly_workouts = [c["exercise"] / 2 for c in per_user.values()]
    assert 1.5 < sum(weekly_workouts) / len(weekly_workouts) < 4.0
    assert max(weekly_workouts) <= 7
    assert all(1 <= len(names) <= 3 for names in providers.values())
    assert statuses["partial"] > 0 and statuses["failed"] > 0
    assert statuses["success"] > 0.8 * sum(statuses.values())
    assert missing_metrics > 0
    social = sorted(c["social"] for c in per_user.values())
    assert social[len(social) // 2] > 10 and social[-1] > 3 * social[len(social) // 2]


def test_social_events_come_in_bursts() -> None:
    gaps = []
    last: dict[str, datetime] = {}
    for generated in stream():
        if generated.event_type != "social":
            continue
        assert generated.user_id is not None
        moment = when(generated)
        if generated.user_id in last:
            gaps.append((moment - last[generated.user_id]).total_seconds())
        last[generated.user_id] = moment
    gaps.sort()
    assert gaps[len(gaps) // 2] < 600  # most follow the previous within minutes


def test_config_is_checked() -> None:
    with pytest.raises(GeneratorConfigError, match="users"):
        GeneratorConfig(0, 1, 0, START)
    with pytest.raises(GeneratorConfigError, match="start"):
        GeneratorConfig(1, 1, 0, datetime(2024, 1, 1))
    with pytest.raises(GeneratorConfigError, match="invalid"):
        GeneratorConfig(1, 1, 0, START, invalid=1.5)


def test_default_start_ends_the_stream_at_this_hour() -> None:
    now = datetime(2024, 3, 4, 10, 42, 7, tzinfo=UTC)
    assert default_start(now, 3) == datetime(2024, 3, 1, 10, tzinfo=UTC)


def test_generated_messages_take_the_memory_of_their_length() -> None:
    """Benchmarks hold millions of them (orjson 3.13 leaves its output in 4 KB)."""
    import tracemalloc

    config = GeneratorConfig(users=5, days=2, seed=3, start=datetime(2026, 3, 1, tzinfo=UTC))
    tracemalloc.start()
    try:
        raws = [g.raw for g in generate(config)]
        held = tracemalloc.take_snapshot().statistics("filename")
    finally:
        tracemalloc.stop()
    per_message = sum(s.size for s in held) / len(raws)
    assert per_message < 3 * sum(len(r) for r in raws) / len(raws)
