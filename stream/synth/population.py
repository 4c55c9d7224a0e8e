"""Synthetic users and their days: who sleeps, moves, posts and syncs when, as valid v1 events.

Pure and deterministic: every random draw comes from the `random.Random` handed in, nothing
reads the clock. Times are integer milliseconds since the epoch (UTC); each user lives at one
fixed UTC offset and every timestamp is written in it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

MINUTE_MS: Final = 60_000
HOUR_MS: Final = 3_600_000
DAY_MS: Final = 86_400_000
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()

# (minutes east of UTC, how the offset is written); users at UTC split between "Z" and "+00:00"
# because both appear in real clients' output.
OFFSETS: Final = ((-300, "-05:00"), (0, "Z"), (0, "+00:00"), (60, "+01:00"), (330, "+05:30"),
                  (540, "+09:00"))  # fmt: skip
_OFFSET_WEIGHTS: Final = (30, 8, 7, 25, 15, 15)

# (source_app, writes milliseconds, writes absent optional fields as null)
APPS: Final = (("aurora-ios", False, False), ("aurora-android", True, True),
               ("aurora-web", True, False))  # fmt: skip
_APP_WEIGHTS: Final = (45, 40, 15)
SYNC_APP: Final = "aurora-sync"

ACTIVITY_TYPES: Final = ("walking", "work", "reading", "meditation", "cooking", "chores",
                         "socializing", "gaming", "music", "other")  # fmt: skip
_ACTIVITY_WEEKDAY: Final = (14, 25, 10, 7, 12, 10, 6, 6, 6, 4)
_ACTIVITY_WEEKEND: Final = (16, 4, 12, 7, 14, 14, 14, 10, 7, 2)
# Typical minutes (low, high) and the nudge each kind gives to energy and mood.
_ACTIVITY_SHAPE: Final = {
    "walking": (10, 75, 0.8, 0.6), "work": (30, 240, -0.6, -0.4), "reading": (10, 90, 0.0, 0.3),
    "meditation": (5, 30, 0.4, 0.8), "cooking": (15, 90, 0.0, 0.4), "chores": (10, 90, -0.3, -0.3),
    "socializing": (30, 180, 0.3, 1.0), "gaming": (20, 180, -0.2, 0.4), "music": (10, 90, 0.2, 0.7),
    "other": (5, 60, 0.0, 0.0),
}  # fmt: skip

EXERCISE_TYPES: Final = ("running", "cycling", "swimming", "strength", "yoga", "hiit", "walking",
                         "other")  # fmt: skip
_EXERCISE_MINUTES: Final = {
    "running": (20, 75), "cycling": (30, 150), "swimming": (20, 60), "strength": (30, 75),
    "yoga": (20, 75), "hiit": (15, 40), "walking": (20, 90), "other": (15, 90),
}  # fmt: skip
_INTENSITY_WEIGHTS: Final = {
    "running": (1, 5, 4), "cycling": (2, 5, 3), "swimming": (2, 5, 3), "strength": (1, 5, 4),
    "yoga": (6, 3, 1), "hiit": (0, 1, 9), "walking": (7, 3, 0), "other": (3, 5, 2),
}  # fmt: skip
_KCAL_PER_MINUTE: Final = {"low": 4.0, "moderate": 7.0, "high": 10.5}

SOCIAL_ACTIONS: Final = ("post", "comment", "like_given", "like_received", "friend_added",
                         "friend_removed")  # fmt: skip
_SOCIAL_WEIGHTS: Final = (8, 14, 40, 22, 5, 1.5)

PROVIDERS: Final = ("apple_health", "google_fit", "fitbit", "garmin", "oura", "strava", "withings")
# Which of heart_rate_avg, steps, active_calories each provider measures at all.
_CAPABILITIES: Final = {
    "apple_health": (True, True, True), "google_fit": (True, True, True),
    "fitbit": (True, True, True), "garmin": (True, True, True), "oura": (True, True, True),
    "strava": (True, False, True), "withings": (True, True, False),
}  # fmt: skip
_METRICS: Final = ("heart_rate_avg", "steps", "active_calories")


@dataclass(frozen=True)
class Traits:
    """What stays the same about a user for the whole stream."""

    user_id: str
    offset_min: int
    offset_text: str
    source_app: str
    millis: bool
    nulls_for_absent: bool
    activities_per_day: float
    bedtime_h: float  # mean bedtime in hours after local noon (11.0 = 23:00)
    bedtime_sd_h: float
    sleep_need_min: float
    sleep_log_p: float
    nap_p: float
    exercise_per_week: int
    exercise_types: tuple[str, ...]
    exercise_weights: tuple[float, ...]
    exercise_hour: float
    social_day_p: float
    burst_mean: float
    providers: tuple[tuple[str, float, float], ...]  # (provider, local sync hour, failure p)
    idle_start_p: float
    idle_days: tuple[int, int]
    energy_base: float
    mood_base: float
    heart_rate_base: float
    steps_base: float


@dataclass
class User:
    """A user's traits, own random stream and the little state that carries across days."""

    traits: Traits
    rng: random.Random
    idle_left: int = 0
    friends: list[str] = field(default_factory=list)


def make_user(seed: int, index: int, user_id: str) -> User:
    """The user at `index`: its traits and random stream depend only on (seed, index)."""
    # Reproducible, not secret: a seeded Mersenne Twister is exactly what is wanted here.
    rng = random.Random(f"aurora:{seed}:{index}")  # noqa: S311
    offset_min, offset_text = rng.choices(OFFSETS, _OFFSET_WEIGHTS)[0]
    app, millis, nulls = rng.choices(APPS, _APP_WEIGHTS)[0]
    idle_prone = rng.random() < 0.12
    favourites = rng.sample(EXERCISE_TYPES, rng.randint(1, 3))
    provider_names = rng.sample(PROVIDERS, rng.choices((1, 2, 3), (50, 35, 15))[0])
    traits = Traits(
        user_id=user_id,
        offset_min=offset_min,
        offset_text=offset_text,
        source_app=app,
        millis=millis,
        nulls_for_absent=nulls,
        activities_per_day=_clip(rng.lognormvariate(math.log(4.0), 0.5), 0.5, 12.0),
        bedtime_h=_clip(rng.gauss(11.0, 0.9), 9.0, 14.5),
        bedtime_sd_h=rng.uniform(0.2, 1.2),
        sleep_need_min=_clip(rng.gauss(450.0, 40.0), 330.0, 560.0),
        sleep_log_p=rng.uniform(0.75, 1.0),
        nap_p=rng.uniform(0.05, 0.2) if rng.random() < 0.3 else 0.02,
        exercise_per_week=rng.choices((0, 1, 2, 3, 4, 5, 6), (15, 17, 18, 18, 17, 9, 6))[0],
        exercise_types=(*favourites, "other"),
        exercise_weights=(*(rng.uniform(1.0, 4.0) for _ in favourites), 0.3),
        exercise_hour=rng.choice((6.5, 7.5, 12.5, 17.5, 18.5, 19.5)),
        social_day_p=rng.uniform(0.05, 0.9),
        burst_mean=rng.uniform(2.0, 12.0),
        providers=tuple(
            (name, rng.uniform(5.0, 23.0), rng.uniform(0.01, 0.08)) for name in provider_names
        ),
        idle_start_p=0.10 if idle_prone else 0.01,
        idle_days=(2, 7) if idle_prone else (1, 3),
        energy_base=rng.gauss(6.0, 1.2),
        mood_base=rng.gauss(6.5, 1.2),
        heart_rate_base=_clip(rng.gauss(68.0, 7.0), 50.0, 95.0),
        steps_base=_clip(rng.lognormvariate(math.log(7000.0), 0.4), 1500.0, 25000.0),
    )
    return User(traits, rng)


class Clock:
    """Formats instants as RFC 3339 in one user's offset; caches the date part per day."""

    def __init__(self, offset_min: int, offset_text: str, millis: bool) -> None:
        self._offset_ms = offset_min * MINUTE_MS
        self._suffix = offset_text
        self._millis = millis
        self._dates: dict[int, str] = {}

    def local_midnight(self, day: date) -> int:
        return (day.toordinal() - _EPOCH_ORDINAL) * DAY_MS - self._offset_ms

    def truncate(self, t_ms: int) -> int:
        """The instant as written: users whose app writes no milliseconds lose them."""
        return t_ms if self._millis else t_ms - t_ms % 1000

    def format(self, t_ms: int) -> str:
        days, in_day = divmod(t_ms + self._offset_ms, DAY_MS)
        text = self._dates.get(days)
        if text is None:
            text = self._dates[days] = date.fromordinal(days + _EPOCH_ORDINAL).isoformat() + "T"
        # Table look-ups instead of number formatting: this runs for every timestamp generated.
        seconds, ms = divmod(in_day, 1000)
        minutes, s = divmod(seconds, 60)
        if self._millis:
            return text + _HH_MM[minutes] + _SS[s] + _MS[ms] + self._suffix
        return text + _HH_MM[minutes] + _SS[s] + self._suffix


_HH_MM: Final = tuple(f"{m // 60:02d}:{m % 60:02d}" for m in range(1440))
_SS: Final = tuple(f":{s:02d}" for s in range(60))
_MS: Final = tuple(f".{ms:03d}" for ms in range(1000))


def user_day(user: User, day: date, clock: Clock, population: Sequence[str]) -> list[Any]:
    """The events of one local calendar day, as (time in ms, event type, payload) triples.

    Returns [] on idle days: an idle user emits nothing at all, syncs included.
    """
    t, rng = user.traits, user.rng
    if user.idle_left > 0:
        user.idle_left -= 1
        return []
    if rng.random() < t.idle_start_p:
        user.idle_left = rng.randint(*t.idle_days) - 1
        return []
    midnight = clock.local_midnight(day)
    weekend = day.weekday() >= 5
    # Friday and Saturday nights run later; the night before `day` is the one it wakes from.
    late_night = day.weekday() in (5, 6)
    out: list[Any] = []
    wake = _sleep(user, clock, midnight, late_night, out)
    bedtime_h = t.bedtime_h + (0.75 if day.weekday() in (4, 5) else 0.0)
    awake_from = wake + 30 * MINUTE_MS
    awake_until = midnight + int((12.0 + bedtime_h - 0.5) * HOUR_MS)
    mood_today = rng.gauss(0.0, 1.0)
    energy_today = rng.gauss(0.0, 0.8)
    _nap(user, clock, midnight, weekend, out)
    _activities(user, weekend, awake_from, awake_until, mood_today, energy_today, out)
    _exercise(user, midnight, weekend, energy_today, out)
    _social(user, awake_from, awake_until, population, out)
    _syncs(user, midnight, energy_today, out)
    return out


def _sleep(user: User, clock: Clock, midnight: int, late_night: bool, out: list[Any]) -> int:
    t, rng = user.traits, user.rng
    bed_h = t.bedtime_h + (0.75 if late_night else 0.0) + rng.gauss(0.0, t.bedtime_sd_h)
    start = midnight - DAY_MS + int((12.0 + bed_h) * HOUR_MS) + rng.randrange(60_000)
    asleep = _clip(rng.gauss(t.sleep_need_min + (30.0 if late_night else 0.0), 45.0), 180.0, 720.0)
    awake = rng.uniform(5.0, 60.0)
    end = max(start + int((asleep + awake) * MINUTE_MS), midnight + 3 * HOUR_MS)
    if rng.random() < t.sleep_log_p:
        out.append((end, "sleep", _sleep_payload(rng, clock, start, end, asleep, awake)))
    return end


def _nap(user: User, clock: Clock, midnight: int, weekend: bool, out: list[Any]) -> None:
    t, rng = user.traits, user.rng
    if rng.random() >= t.nap_p * (1.5 if weekend else 1.0):
        return
    start = midnight + int(rng.uniform(13.0, 16.5) * HOUR_MS)
    asleep = rng.uniform(15.0, 90.0)
    awake = rng.uniform(0.0, 10.0)
    end = start + int((asleep + awake) * MINUTE_MS)
    out.append((end, "sleep", _sleep_payload(rng, clock, start, end, asleep, awake)))


def _sleep_payload(
    rng: random.Random, clock: Clock, start: int, end: int, asleep: float, awake: float
) -> dict[str, Any]:
    duration = round(asleep, 1)
    deep = round(duration * rng.uniform(0.10, 0.23), 1)
    rem = round(duration * rng.uniform(0.15, 0.26), 1)
    # Devices leave a sliver unclassified, so the stages rarely add up to the whole duration.
    light = max(0.0, round(duration - deep - rem - duration * rng.uniform(0.0, 0.02), 1))
    return {
        "sleep_start": clock.format(start),
        "sleep_end": clock.format(end),
        "duration_minutes": duration,
        "deep_sleep_minutes": deep,
        "rem_sleep_minutes": rem,
        "light_sleep_minutes": light,
        "awake_minutes": round(awake, 1),
    }


def _activities(
    user: User,
    weekend: bool,
    start: int,
    end: int,
    mood_today: float,
    energy_today: float,
    out: list[Any],
) -> None:
    t, rng = user.traits, user.rng
    count = _poisson(rng, t.activities_per_day * (1.15 if weekend else 1.0))
    weights = _ACTIVITY_WEEKEND if weekend else _ACTIVITY_WEEKDAY
    for kind in rng.choices(ACTIVITY_TYPES, weights, k=count):
        low, high, energy_nudge, mood_nudge = _ACTIVITY_SHAPE[kind]
        energy = t.energy_base + energy_today + energy_nudge + rng.gauss(0.0, 1.2)
        mood = t.mood_base + mood_today + mood_nudge + rng.gauss(0.0, 1.2)
        payload = {
            "activity_type": kind,
            "duration_minutes": int(low + (high - low) * rng.random() ** 1.5),
            "energy_level": _scale(energy),
            "mood": _scale(mood),
        }
        out.append((start + int(rng.random() * max(end - start, HOUR_MS)), "activity", payload))


def _exercise(
    user: User, midnight: int, weekend: bool, energy_today: float, out: list[Any]
) -> None:
    t, rng = user.traits, user.rng
    if rng.random() >= t.exercise_per_week / 7.0 * (1.25 if weekend else 0.9):
        return
    kind = rng.choices(t.exercise_types, t.exercise_weights)[0]
    low, high = _EXERCISE_MINUTES[kind]
    minutes = int(low + (high - low) * rng.random() * (1.3 if weekend else 1.0))
    minutes = min(minutes, 600)
    intensity = rng.choices(("low", "moderate", "high"), _INTENSITY_WEIGHTS[kind])[0]
    start_h = _clip(t.exercise_hour + rng.gauss(0.0, 0.75) + (2.0 if weekend else 0.0), 5.0, 22.0)
    end = midnight + int(start_h * HOUR_MS) + minutes * MINUTE_MS
    after = t.energy_base + energy_today + {"low": 0.6, "moderate": 0.3, "high": -0.5}[intensity]
    payload: dict[str, Any] = {
        "exercise_type": kind,
        "duration_minutes": minutes,
        "intensity": intensity,
        "energy_after": _scale(after + rng.gauss(0.0, 1.4)),
    }
    if rng.random() < 0.75:
        kcal = minutes * _KCAL_PER_MINUTE[intensity] * rng.gauss(1.0, 0.15)
        payload["calories"] = round(_clip(kcal, 0.0, 5000.0))
    elif t.nulls_for_absent:
        payload["calories"] = None
    out.append((end, "exercise", payload))


def _social(user: User, start: int, end: int, population: Sequence[str], out: list[Any]) -> None:
    t, rng = user.traits, user.rng
    if rng.random() >= t.social_day_p:
        return
    sessions = 1 + (rng.random() < 0.35) + (rng.random() < 0.1)
    for _ in range(sessions):
        # Evenings are busier: the later of two uniform draws leans towards the end.
        at = start + int(max(rng.random(), rng.random()) * max(end - start, HOUR_MS))
        burst = 1 + min(int(rng.expovariate(1.0 / t.burst_mean)), 40)
        for action in rng.choices(SOCIAL_ACTIONS, _SOCIAL_WEIGHTS, k=burst):
            at += int(rng.expovariate(1.0 / 45.0) * 1000) + 1000
            out.append((at, "social", _social_payload(user, action, population)))


def _social_payload(user: User, action: str, population: Sequence[str]) -> dict[str, Any]:
    rng = user.rng
    payload: dict[str, Any] = {"action": action}
    other = population[rng.randrange(len(population))] if len(population) > 1 else None
    if other == user.traits.user_id:
        other = None
    if action == "friend_added" and other is not None:
        user.friends.append(other)
    elif action == "friend_removed" and user.friends:
        other = user.friends.pop(rng.randrange(len(user.friends)))
    if action in ("post", "comment", "like_given", "like_received"):
        payload["content_id"] = f"post-{rng.getrandbits(48):012x}"
    # Likes received name the liker only sometimes: the app batches anonymous likes.
    named = action != "like_received" or rng.random() < 0.6
    if other is not None and named:
        payload["target_user_id"] = other
    elif user.traits.nulls_for_absent:
        payload["target_user_id"] = None
    return payload


def _syncs(user: User, midnight: int, energy_today: float, out: list[Any]) -> None:
    t, rng = user.traits, user.rng
    for provider, hour, failure_p in t.providers:
        if rng.random() < 0.07:
            continue  # the phone was offline that day: no sync at all
        at = midnight + int(_clip(hour + rng.gauss(0.0, 0.5), 0.0, 23.9) * HOUR_MS)
        roll = rng.random()
        status = (
            "failed" if roll < failure_p else "partial" if roll < failure_p + 0.08 else "success"
        )
        payload: dict[str, Any] = {
            "provider": provider,
            "status": status,
            "records_synced": 0
            if status == "failed"
            else rng.randint(1, 500)
            if status == "partial"
            else rng.randint(20, 3000),
        }
        steps = int(_clip(t.steps_base * math.exp(energy_today * 0.2) * rng.lognormvariate(0, 0.3),
                          0.0, 60000.0))  # fmt: skip
        values = (
            round(_clip(rng.gauss(t.heart_rate_base, 3.0), 40.0, 120.0), 1),
            steps,
            round(_clip(steps * 0.04 + rng.gauss(150.0, 60.0), 0.0, 3000.0)),
        )
        for metric, capable, value in zip(_METRICS, _CAPABILITIES[provider], values, strict=True):
            present = capable and (
                (status == "success" and rng.random() < 0.95)
                or (status == "partial" and rng.random() < 0.5)
            )
            if present:
                payload[metric] = value
            elif t.nulls_for_absent and rng.random() < 0.5:
                payload[metric] = None
        out.append((at, "sync", payload))


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method: fine for the small means used here.
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _scale(value: float) -> int:
    return int(_clip(round(value), 1, 10))


def _clip(value: float, low: float, high: float) -> float:
    return low if value < low else high if value > high else value
