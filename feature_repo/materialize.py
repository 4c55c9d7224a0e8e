"""Materialize features from the Postgres snapshots into Redis, or show what is served.

    python feature_repo/materialize.py full          # the last 7 days
    python feature_repo/materialize.py incremental   # since the last run, per feature view
    python feature_repo/materialize.py example       # online features of a sample user

The stream workers push rows online as they compute them, so this is the repair path: after Redis
lost its data, or after `make replay` rewrote history in Postgres.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import redis

from stream.featurestore.env import open_store
from stream.redis_client import where
from stream.settings import Settings, get_settings

FULL_WINDOW = timedelta(days=7)
SAMPLE_FEATURES = [
    "user_activity_features:avg_energy_7d",
    "sleep_features:sleep_quality_score",
    "exercise_features:exercise_consistency_score",
]


def full(settings: Settings) -> None:
    store = open_store(settings)
    end = datetime.now(UTC)
    store.materialize(start_date=end - FULL_WINDOW, end_date=end)
    print(f"materialized {end - FULL_WINDOW:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC")


def incremental(settings: Settings) -> None:
    store = open_store(settings)
    end = datetime.now(UTC)
    store.materialize_incremental(end_date=end)
    print(f"materialized every view up to {end:%Y-%m-%d %H:%M} UTC")


def example(settings: Settings, user_id: str) -> None:
    store = open_store(settings)
    online = store.get_online_features(
        features=SAMPLE_FEATURES, entity_rows=[{"user_id": user_id}]
    ).to_dict()
    _show(f"online features of {user_id}", online)
    context = {"user_id": user_id, "current_hour": 14, "day_of_week": 3, "is_weekend": 0}
    service = store.get_online_features(
        features=store.get_feature_service("energy_prediction_v1"), entity_rows=[context]
    ).to_dict()
    _show("energy_prediction_v1 at 14:00 on a Thursday", service)


def _show(title: str, columns: dict[str, list[Any]]) -> None:
    print(title)
    width = max(len(name) for name in columns)
    for name, values in columns.items():
        print(f"  {name:<{width}}  {values[0]!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["full", "incremental", "example"])
    parser.add_argument("--user", default="user-123", help="user_id for `example`")
    args = parser.parse_args(argv)
    settings = get_settings()
    try:
        if args.mode == "full":
            full(settings)
        elif args.mode == "incremental":
            incremental(settings)
        else:
            example(settings, args.user)
    except psycopg.OperationalError as exc:
        pg = settings.postgres
        print(f"error: PostgreSQL at {pg.host}:{pg.port} did not answer: {exc}", file=sys.stderr)
        return 2
    except (redis.ConnectionError, redis.exceptions.RedisClusterException) as exc:
        print(f"error: Redis at {where(settings)} did not answer: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
