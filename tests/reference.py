"""The independent reference: features computed from raw events with plain pandas.

Written from the catalog's definition texts and the documented rules (row time, late events,
duplicates, the 1-hour tile window definition), without the pipeline's tiles, state or formulas, so
that agreement between the two means something.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

HOUR_US = 3_600_000_000
WINDOW_TILES = {"24h": 24, "7d": 24 * 7, "30d": 24 * 30}
VIEW_OF = {
    "activity": "user_activity_features",
    "sleep": "sleep_features",
    "exercise": "exercise_features",
    "social": "social_features",
    "sync": "integration_features",
}


def us(text: str) -> int:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return round(moment.timestamp() * 1_000_000)


def flat(event: Mapping[str, Any]) -> dict[str, Any]:
    """One raw event as a flat record: envelope fields, payload fields and the time in us."""
    record = {k: v for k, v in event.items() if k != "payload"}
    record.update(event["payload"])
    record["ts_us"] = us(event["event_timestamp"])
    record["tile"] = record["ts_us"] // HOUR_US
    return record


@dataclass
class RefRow:
    view: str
    user_id: str
    row_us: int
    values: dict[str, Any]


def rows_in_arrival_order(events: Iterable[Mapping[str, Any]]) -> list[RefRow]:
    """Every row the rules produce, replaying each user's events of each type in arrival order."""
    applied: dict[tuple[str, str], list[dict[str, Any]]] = {}
    last_row: dict[tuple[str, str], int] = {}
    rows = []
    for event in events:
        record = flat(event)
        key = (record["user_id"], record["event_type"])
        history = applied.setdefault(key, [])
        if history:
            newest_tile = max(r["tile"] for r in history)
            if record["tile"] < newest_tile - WINDOW_TILES["30d"] + 1:
                continue  # too late: archived, never aggregated
            kept = [r for r in history if r["tile"] >= newest_tile - WINDOW_TILES["30d"] + 1]
            if any(r["event_id"] == record["event_id"] for r in kept):
                continue  # duplicate
        history.append(record)
        row_us = record["ts_us"]
        if key in last_row and row_us <= last_row[key]:
            row_us = last_row[key] + 1
        last_row[key] = row_us
        rows.append(features_at(history, record["event_type"], record["user_id"], row_us))
    return rows


def features_at(
    history: list[dict[str, Any]], event_type: str, user_id: str, row_us: int
) -> RefRow:
    df = pd.DataFrame(history)
    row_tile = row_us // HOUR_US
    newest_tile = int(df["tile"].max())
    df = df[df["tile"] >= newest_tile - WINDOW_TILES["30d"] + 1]

    def window(name: str) -> pd.DataFrame:
        return df[(df["tile"] >= row_tile - WINDOW_TILES[name] + 1) & (df["tile"] <= row_tile)]

    compute = {
        "activity": _activity,
        "sleep": _sleep,
        "exercise": _exercise,
        "social": _social,
        "sync": _sync,
    }[event_type]
    values = compute(window, df, row_tile, row_us, history)
    return RefRow(VIEW_OF[event_type], user_id, row_us, values)


def _mean(series: pd.Series) -> float | None:
    series = series.dropna()
    return None if series.empty else float(series.mean())


def _mode(series: pd.Series) -> str | None:
    if series.empty:
        return None
    counts = series.value_counts()
    top = counts.max()
    return str(sorted(counts[counts == top].index)[0])


def _activity(window: Any, df: pd.DataFrame, row_tile: int, row_us: int, h: Any) -> dict[str, Any]:
    d24, d7, d30 = window("24h"), window("7d"), window("30d")
    return {
        "activity_count_24h": len(d24),
        "activity_count_7d": len(d7),
        "activity_count_30d": len(d30),
        "total_minutes_24h": float(d24["duration_minutes"].sum()),
        "total_minutes_7d": float(d7["duration_minutes"].sum()),
        "total_minutes_30d": float(d30["duration_minutes"].sum()),
        "activity_diversity_7d": int(d7["activity_type"].nunique()),
        "activity_diversity_30d": int(d30["activity_type"].nunique()),
        "most_common_activity_24h": _mode(d24["activity_type"]),
        "avg_energy_7d": _mean(d7["energy_level"]),
        "avg_mood_7d": _mean(d7["mood"]),
    }


def _bedtime(text: str) -> float:
    start = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return ((start.hour + start.minute / 60 + start.second / 3600) - 12) % 24


def _quality(r: pd.Series) -> float:
    d = r["duration_minutes"]
    in_bed = d + r["awake_minutes"]
    efficiency = d / in_bed if in_bed > 0 else 0.0
    stages = (
        min(1.0, (r["deep_sleep_minutes"] + r["rem_sleep_minutes"]) / (0.45 * d)) if d > 0 else 0.0
    )
    return float(0.5 * min(1.0, d / 480) + 0.25 * efficiency + 0.25 * stages)


def _sleep(window: Any, df: pd.DataFrame, row_tile: int, row_us: int, h: Any) -> dict[str, Any]:
    d7, d30 = window("7d"), window("30d")
    bed = d7["sleep_start"].map(_bedtime) if len(d7) else pd.Series(dtype=float)
    std = float(bed.std(ddof=0)) if len(bed) else None
    mean_bed = _mean(bed)
    return {
        "avg_sleep_duration_7d": _mean(d7["duration_minutes"]),
        "avg_sleep_duration_30d": _mean(d30["duration_minutes"]),
        "sleep_consistency_7d": None if std is None else max(0.0, 1 - std / 2),
        "avg_bedtime_hour_7d": None if mean_bed is None else (mean_bed + 12) % 24,
        "sleep_sessions_7d": len(d7),
        "sleep_debt_minutes": None
        if d7.empty
        else max(0.0, 480.0 * len(d7) - float(d7["duration_minutes"].sum())),
        "sleep_quality_score": _mean(d7.apply(_quality, axis=1)) if len(d7) else None,
        "avg_deep_sleep_minutes_7d": _mean(d7["deep_sleep_minutes"]),
        "avg_rem_sleep_minutes_7d": _mean(d7["rem_sleep_minutes"]),
    }


def _exercise(window: Any, df: pd.DataFrame, row_tile: int, row_us: int, h: Any) -> dict[str, Any]:
    d7, d30 = window("7d"), window("30d")
    active_days = ((row_tile - d30["tile"]) // 24).nunique()
    variety = None
    if len(d7):
        p = d7["exercise_type"].value_counts(normalize=True)
        variety = float(-(p * p.map(math.log)).sum() / math.log(8))
    return {
        "exercise_count_7d": len(d7),
        "exercise_count_30d": len(d30),
        "exercise_minutes_7d": float(d7["duration_minutes"].sum()),
        "exercise_minutes_30d": float(d30["duration_minutes"].sum()),
        "avg_exercise_duration_7d": _mean(d7["duration_minutes"]),
        "avg_energy_after_exercise_7d": _mean(d7["energy_after"]),
        "exercise_consistency_score": min(1.0, active_days / (30 * 3 / 7)),
        "workout_variety_score_7d": variety,
        "high_intensity_count_7d": int((d7["intensity"] == "high").sum()),
    }


WEIGHTS = {"post": 3, "comment": 2, "like_given": 1, "friend_added": 1, "like_received": 0.5}


def _social(window: Any, df: pd.DataFrame, row_tile: int, row_us: int, h: Any) -> dict[str, Any]:
    d7, d30 = window("7d"), window("30d")
    everything = pd.DataFrame(h)
    friends = int((everything["action"] == "friend_added").sum()) - int(
        (everything["action"] == "friend_removed").sum()
    )
    targets = d7["target_user_id"] if "target_user_id" in d7 else pd.Series([None] * len(d7))
    interactions = d7["action"].isin(["comment", "like_given"]) & targets.notna().to_numpy()
    posts_30d = int((d30["action"] == "post").sum())
    weight = float(d7["action"].map(lambda a: WEIGHTS.get(a, 0.0)).sum())
    return {
        "friend_count": max(0, friends),
        "posts_7d": int((d7["action"] == "post").sum()),
        "comments_7d": int((d7["action"] == "comment").sum()),
        "likes_received_7d": int((d7["action"] == "like_received").sum()),
        "likes_given_7d": int((d7["action"] == "like_given").sum()),
        "social_engagement_score": 1 - math.exp(-weight / 30),
        "avg_post_likes": int((d30["action"] == "like_received").sum()) / posts_30d
        if posts_30d
        else None,
        "comment_rate_7d": int((d7["action"] == "comment").sum()) / 7,
        "friend_interactions_7d": int(interactions.sum()),
    }


def _sync(window: Any, df: pd.DataFrame, row_tile: int, row_us: int, h: Any) -> dict[str, Any]:
    d7, d30 = window("7d"), window("30d")
    ok7 = d7[d7["status"] != "failed"]
    ok30 = d30[d30["status"] != "failed"]
    everything = pd.DataFrame(h)
    synced = everything[everything["status"] != "failed"]
    last = None if synced.empty else (row_us - int(synced["ts_us"].max())) / HOUR_US

    def metric(name: str) -> float | None:
        return _mean(ok7[name]) if name in ok7 else None

    present = sum(
        int(ok7[m].notna().sum())
        for m in ("heart_rate_avg", "steps", "active_calories")
        if m in ok7
    )
    weights = d7["status"].map({"success": 1.0, "partial": 0.5, "failed": 0.0})
    return {
        "active_integrations_count": int(ok30["provider"].nunique()),
        "last_sync_hours_ago": last,
        "avg_heart_rate_7d": metric("heart_rate_avg"),
        "avg_steps_7d": metric("steps"),
        "avg_calories_7d": metric("active_calories"),
        "data_completeness_score": present / (3 * max(len(ok7), 7)),
        "sync_reliability_score": _mean(weights),
    }
