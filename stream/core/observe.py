"""From a validated event to the measures the tiles add up: pure, one function per event type.

Each event becomes an `Observation`: numeric measures (summed, and squared where a standard
deviation needs it), categorical measures (counted per value), and the all-time facts that live
outside the windows. The names are the `column`s of stream/catalog.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from hashlib import blake2b
from typing import Any, Final

from stream.catalog import SLEEP_TARGET_MINUTES, EventType
from stream.core.events import instant_us
from stream.core.tiles import EVENTS, Deltas, category_key, nn_key, square_key, sum_key

# Numeric measures whose squares the tiles also keep (for a population standard deviation).
SQUARED: Final = frozenset({"bedtime_hours_from_noon"})
# Measures are kept as integers in units of 1/SCALE (nano-units): sums and differences of
# integers are exact, so a window slid tile by tile, refolded, or rebuilt after a restart holds
# the same numbers, and a rerun gives the same bits. 1e-9 is far below any measure's precision.
SCALE: Final = 1_000_000_000

ENGAGEMENT_WEIGHTS: Final = {
    "post": 3.0,
    "comment": 2.0,
    "like_given": 1.0,
    "friend_added": 1.0,
    "like_received": 0.5,
    "friend_removed": 0.0,
}
SUCCESS_WEIGHTS: Final = {"success": 1.0, "partial": 0.5, "failed": 0.0}
SYNC_METRICS: Final = ("heart_rate_avg", "steps", "active_calories")
RESTORATIVE_SHARE_TARGET: Final = 0.45


class Observation:
    """What one event contributes. `ts_us` is the event time in microseconds since the epoch.

    A plain class, not a dataclass: mypyc compiles this `__init__` into the native
    constructor, where a dataclass's is generated Python (one is built per event).
    """

    __slots__ = (
        "categories",
        "deltas",
        "event_type",
        "friend_delta",
        "id_hash",
        "numbers",
        "synced",
        "ts_us",
        "user_id",
    )

    def __init__(
        self,
        event_type: EventType,
        user_id: str,
        id_hash: int,  # of the event id (`id_hash`): what deduplication compares
        ts_us: int,
        numbers: dict[str, int],  # in units of 1/SCALE
        categories: dict[str, str],
        friend_delta: int = 0,
        synced: bool = False,
        # What the event adds to a tile or window (stream.core.tiles): computed once, added four
        # times.
        deltas: Deltas = (),
    ) -> None:
        self.event_type = event_type
        self.user_id = user_id
        self.id_hash = id_hash
        self.ts_us = ts_us
        self.numbers = numbers
        self.categories = categories
        self.friend_delta = friend_delta
        self.synced = synced
        self.deltas = deltas


# The bits of an event id the states keep to skip a duplicate (`id_hash`).
ID_BITS: Final = 48
ID_MASK: Final = (1 << ID_BITS) - 1


def id_hash(event_id: str) -> int:
    """A 48-bit hash of an event id: what the states keep to skip a duplicate.

    Event ids are UUIDs (the envelope schema requires the canonical form), whose 128 bits are
    folded into 48. A duplicate has the same time, so only ids of one user, event type and hour
    are ever compared: two different events there share a hash with a chance of 2**-48, and a
    1M-user app's 50M events a day would wrongly skip one event in about 15,000 years
    (docs/decisions/0021-compact-state.md). An id of another form is hashed with BLAKE2b.
    """
    digits = event_id.replace("-", "") if len(event_id) == 36 else ""
    if (
        len(digits) == 32
        and digits.isascii()
        and digits.isalnum()
        and "x" not in digits
        and "X" not in digits
    ):
        # The 128-bit integer folded from three pieces that each fit a machine word, the same
        # value without building it: bits 96-127, 48-95 and 0-47. `int` takes signs, blanks,
        # underscores and "0x" in a piece but not inside the whole: excluded above.
        try:
            top, middle, low = int(digits[:8], 16), int(digits[8:20], 16), int(digits[20:], 16)
            return (top ^ middle ^ low) & ID_MASK
        except ValueError:
            pass  # a letter past "f": not hexadecimal, as a whole either
    try:
        whole = int(digits, 16) if digits else -1
    except ValueError:
        whole = -1
    if whole < 0:
        return int.from_bytes(blake2b(event_id.encode(), digest_size=6).digest(), "little")
    return ((whole >> 96) ^ (whole >> 48) ^ whole) & ID_MASK


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def observe(event: Mapping[str, Any]) -> Observation:
    """The observation of a validated event (stream/core/events.py says what 'validated' means)."""
    event_type: EventType = event["event_type"]
    measures, categories, friend_delta, synced = _DERIVE[event_type](event["payload"])
    numbers = {name: round(value * SCALE) for name, value in measures.items()}
    deltas: list[tuple[str, int]] = [(EVENTS, 1)]
    for name, scaled in numbers.items():
        deltas.append((nn_key(name), 1))
        if scaled:  # a zero sum is an absent one (stream.core.tiles)
            deltas.append((sum_key(name), scaled))
            if name in SQUARED:
                deltas.append((square_key(name), scaled * scaled))
    for name, category in categories.items():
        deltas.append((category_key(name, category), 1))
    return Observation(
        event_type,
        event["user_id"],
        id_hash(event["event_id"]),
        instant_us(event["event_timestamp"]),
        numbers,
        categories,
        friend_delta,
        synced,
        tuple(deltas),
    )


# Numeric measures, categorical measures, the change in friends, whether a sync succeeded.
Derived = tuple[dict[str, float], dict[str, str], int, bool]


def _activity(p: Mapping[str, Any]) -> Derived:
    numbers = {
        "duration_minutes": float(p["duration_minutes"]),
        "energy_level": float(p["energy_level"]),
        "mood": float(p["mood"]),
    }
    return numbers, {"activity_type": p["activity_type"]}, 0, False


def bedtime_hours_from_noon(sleep_start: str) -> float:
    """Local bedtime as hours after noon, so a bedtime around midnight has no wrap-around."""
    start = parse_time(sleep_start)
    hour = start.hour + start.minute / 60 + start.second / 3600
    return (hour - 12) % 24


def session_quality(p: Mapping[str, Any]) -> float:
    duration = float(p["duration_minutes"])
    awake = float(p["awake_minutes"])
    restorative = float(p["deep_sleep_minutes"]) + float(p["rem_sleep_minutes"])
    length = min(1.0, duration / SLEEP_TARGET_MINUTES)
    in_bed = duration + awake
    efficiency = duration / in_bed if in_bed > 0 else 0.0
    stages = min(1.0, restorative / (RESTORATIVE_SHARE_TARGET * duration)) if duration > 0 else 0.0
    return 0.5 * length + 0.25 * efficiency + 0.25 * stages


def _sleep(p: Mapping[str, Any]) -> Derived:
    numbers = {
        "duration_minutes": float(p["duration_minutes"]),
        "deep_sleep_minutes": float(p["deep_sleep_minutes"]),
        "rem_sleep_minutes": float(p["rem_sleep_minutes"]),
        "bedtime_hours_from_noon": bedtime_hours_from_noon(p["sleep_start"]),
        "session_quality": session_quality(p),
    }
    return numbers, {}, 0, False


def _exercise(p: Mapping[str, Any]) -> Derived:
    numbers = {
        "duration_minutes": float(p["duration_minutes"]),
        "energy_after": float(p["energy_after"]),
    }
    categories = {"exercise_type": p["exercise_type"], "intensity": p["intensity"]}
    return numbers, categories, 0, False


def _social(p: Mapping[str, Any]) -> Derived:
    action = p["action"]
    categories = {"action": action}
    # A comment or like aimed at someone is an interaction with a friend.
    if action in ("comment", "like_given") and p.get("target_user_id"):
        categories["target_user_id"] = "present"
    delta = {"friend_added": 1, "friend_removed": -1}.get(action, 0)
    return {"engagement_weight": ENGAGEMENT_WEIGHTS[action]}, categories, delta, False


def _sync(p: Mapping[str, Any]) -> Derived:
    status = p["status"]
    synced = status != "failed"
    numbers = {"success_weight": SUCCESS_WEIGHTS[status], "synced": 1.0 if synced else 0.0}
    categories: dict[str, str] = {}
    if synced:
        categories["provider"] = p["provider"]
        present = [m for m in SYNC_METRICS if p.get(m) is not None]
        numbers["metrics_present"] = float(len(present))
        for metric in present:
            numbers[metric] = float(p[metric])
    return numbers, categories, 0, synced


_DERIVE: Final[dict[str, Callable[[Mapping[str, Any]], Derived]]] = {
    "activity": _activity,
    "sleep": _sleep,
    "exercise": _exercise,
    "social": _social,
    "sync": _sync,
}
