"""Whether the registry's views write what the writer's sinks without Feast write.

The writer process writes Redis (stream/sinks/redis_rows.py) and the snapshot tables
(stream/sinks/snapshots.py) from the catalog, with no Feast imported. That is right only while
the registered views are the catalog's: the same Redis layout, TTL and older-row guard, no
on-demand view precomputed on push, each push source feeding its one view, into the catalog's
table with the catalog's columns. `disagreements` lists where they differ. `check` runs it in a
child process, so that Feast's imports (~140 MiB) leave the writer with that process.
Invariant: an empty list means the Feast-free sinks write exactly what Feast's own would.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from stream import catalog
from stream.catalog import VIEWS, features_of
from stream.errors import SinkError
from stream.settings import Settings

# A registry in Postgres that does not answer is retried by the writer's flush, not here.
CHECK_TIMEOUT_S = 300.0


def disagreements(settings: Settings, *, online: bool, offline: bool) -> list[str]:
    """Where the registry's views differ from the catalog's, for the sinks asked about."""
    from feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source import (
        PostgreSQLSource,
    )

    from stream.featurestore.env import open_store
    from stream.sinks.feast_rows import PushViews
    from stream.sinks.online import OnlineSink
    from stream.sinks.redis_rows import RedisOnlineSink

    store = open_store(settings)
    found: list[str] = []
    if online:
        quick = RedisOnlineSink(settings)
        quick.setup()  # its client and layouts; the cluster's slots are asked for here
        try:
            if not OnlineSink(store).same_as(quick):
                found.append("online: the registry's Redis layout, TTL, guard or precompute differ")
        finally:
            quick.close()
    if offline:
        views = PushViews(store)
        for spec in VIEWS:
            fvs = views.of(spec.push_source)
            if [fv.name for fv in fvs] != [spec.name]:
                names = [fv.name for fv in fvs]
                found.append(f"offline: {spec.push_source} feeds {names}, not [{spec.name!r}]")
                continue
            source = fvs[0].batch_source
            table = None
            if isinstance(source, PostgreSQLSource):
                table = source.get_table_query_string()
            if table != spec.table:
                found.append(f"offline: {spec.name} writes {table!r}, not {spec.table!r}")
                continue
            columns = set(views.offline_columns(fvs[0]))
            given = {"user_id", "event_timestamp", *(f.name for f in features_of(spec.name))}
            if columns != given:
                found.append(f"offline: {spec.name}'s columns {sorted(columns)} differ")
    return found


def verdict_key(settings: Settings, *, online: bool, offline: bool) -> str | None:
    """What a verdict depends on, hashed; None for a SQL registry, whose views are rows in
    Postgres that only Feast reads (its verdict is made afresh each time)."""
    from stream.featurestore.env import feast_environment

    if settings.feast_registry_type != "file":
        return None
    repo = Path(settings.feast_repo_path)
    registry = Path(settings.feast_registry_path)
    registry = registry if registry.is_absolute() else repo / registry
    digest = hashlib.sha256(f"{online}|{offline}|{metadata.version('feast')}".encode())
    try:
        for path in (registry, repo / "feature_store.yaml", Path(catalog.__file__), Path(__file__)):
            digest.update(path.read_bytes())
    except OSError:
        return None  # no registry yet: Feast's check says so
    digest.update(json.dumps(feast_environment(settings), sort_keys=True).encode())
    return digest.hexdigest()[:32]


def check(settings: Settings, *, online: bool, offline: bool) -> list[str]:
    """`disagreements`, computed in a child process (its exit returns Feast's memory), or the
    verdict kept from the last check of the same registry, stores and catalog."""
    key = verdict_key(settings, online=online, offline=offline)
    kept = settings.stack_dir / "registry-verdicts" / f"{key}.json"
    if key is not None and kept.exists():
        with contextlib.suppress(OSError, ValueError):
            found: list[str] = json.loads(kept.read_text())
            return found
    result = _check_in_child(settings, online=online, offline=offline)
    if key is not None:
        # Kept best-effort: a read-only stack folder only means the next start checks again.
        with contextlib.suppress(OSError):
            kept.parent.mkdir(parents=True, exist_ok=True)
            partial = kept.with_suffix(f".{os.getpid()}.tmp")
            partial.write_text(json.dumps(result))
            partial.replace(kept)
    return result


def _check_in_child(settings: Settings, *, online: bool, offline: bool) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "stream.featurestore.agreement"],
        input=pickle.dumps((settings, online, offline)),
        capture_output=True,
        timeout=CHECK_TIMEOUT_S,
        check=False,
    )
    lines = done.stdout.decode(errors="replace").strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = done.stderr.decode(errors="replace")[-2000:]
        raise SinkError(f"checking the registry against the catalog failed: {tail}")
    result: list[str] = json.loads(lines[-1])
    return result


def _main() -> None:
    # The pipe is the writer process's own, and the settings carry secrets JSON would mask.
    settings, online, offline = pickle.loads(sys.stdin.buffer.read())  # noqa: S301
    print(json.dumps(disagreements(settings, online=online, offline=offline)), flush=True)


if __name__ == "__main__":
    _main()
