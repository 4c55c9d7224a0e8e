"""Ingest beside a long history: the same run on tables holding months of rows and on empty ones.

In one run, on the same machine and stack, alternating (`--rounds` times each, best kept):

- empty: `bench.bench_ingest` into a new schema whose tables have the same day partitions as the
  history's, and nothing in them;
- full: the same, into the schema `bench_history`, whose archive and snapshot tables hold
  `--rows` rows each (spread over the `--days` days before today; filled once by this benchmark
  with generated rows, day by day, and topped up on the next run when a day is missing);

each reporting the worker's events/s (from its start, and steady once it archives), and the CPU
per event of Postgres (all its backends). Then, on the full schema: the indexes' size, the part
the run wrote into (the days of its traffic), and how much of that is in shared buffers; and the
time to drop the oldest day of every table, with the dead tuples before and after.

Targets (issue #30): full over empty events/s >= 0.85 and Postgres CPU per event <= 1.15x;
dropping a day < 1 s and no dead tuples left behind. Results: bench/results/growth.json.

    .venv/bin/python -m bench.bench_growth                          # fills 50M + 50M rows once
    .venv/bin/python -m bench.bench_growth --rows 2000000 --days 20 --events 100000   # a try
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from bench import bench_ingest, charts
from bench.common import (
    RESULTS,
    cpu_s,
    create_schema,
    drop_schema,
    fresh_settings,
    write_result,
)
from bench.report import growth_table, update_block
from stream.catalog import VIEWS, features_of
from stream.ops import partitions
from stream.ops.partition_plan import DAY, Partition, midnight, partition_name
from stream.settings import Settings, get_settings
from stream.sinks.archive import ArchiveSink

HISTORY = "bench_history"
DAY_SCHEMA = "bench_day"
TARGET_RATE_RATIO = 0.85  # full over empty events/s, at least
TARGET_CPU_RATIO = 1.15  # full over empty Postgres CPU per event, at most
TARGET_DROP_S = 1.0
TRAFFIC_DAYS = 3  # bench_ingest's traffic: these days before now, into their partitions
USERS = 100_000  # the history's users: ~8 archived events a user a day at 50M over 64 days


def _settings(schema: str) -> Settings:
    return get_settings().model_copy(update={"postgres_schema": schema})


def _connect(settings: Settings) -> psycopg.Connection[Any]:
    conn = partitions.connect(settings)
    # Generated history, rebuilt on loss: no need to wait for each commit's flush.
    conn.execute("SET synchronous_commit = off")
    conn.execute("SET maintenance_work_mem = '256MB'")
    conn.commit()
    return conn


def _exists(conn: psycopg.Connection[Any], name: str) -> bool | None:
    """None: no such table; else whether it holds a row."""
    if conn.execute("SELECT to_regclass(%s)", (name,)).fetchone() == (None,):
        return None
    row = conn.execute(sql.SQL("SELECT EXISTS (SELECT FROM {})").format(sql.Identifier(name)))
    found = row.fetchone()
    conn.commit()
    return bool(found and found[0])


def _archive_rows(name: str, day: date, n: int, span_us: int = 86_400_000_000) -> sql.Composed:
    # A JSON event of the generator's size and shape, as the worker archives it.
    event = (
        '{"event_id":"%s","user_id":"%s","event_type":"%s","timestamp":"%s",'
        '"payload":{"activity_type":"walking","duration_minutes":%s,"energy_level":%s,'
        '"mood":%s,"steps":%s}}'
    )
    return sql.SQL(
        "INSERT INTO {name} (event_id, user_id, event_type, event_timestamp, event, source_topic, "
        "source_partition, source_offset, too_late, received_at) "
        "SELECT id, u, t, ts, format({event}, id, u, t, ts, n % 90, 1 + n % 10, 1 + n % 7, "
        "n % 20000)::json, 'aurora.' || t, n % 4, n, false, ts + interval '1 second' "
        "FROM (SELECT n, gen_random_uuid() AS id, 'h' || (n * 7919 % {users}) AS u, "
        "(ARRAY['activity','sleep','exercise','social','sync'])[1 + n % 5] AS t, "
        "{start} + n * {step} * interval '1 microsecond' AS ts "
        "FROM generate_series(0::bigint, {last}) AS n) AS s"
    ).format(
        name=sql.Identifier(name),
        event=sql.Literal(event),
        users=sql.Literal(USERS),
        start=sql.Literal(midnight(day)),
        step=sql.Literal(span_us // n),
        last=sql.Literal(n - 1),
    )


def _snapshot_rows(table: str, view_name: str, name: str, day: date, n: int) -> sql.Composed:
    values: list[sql.Composable] = []
    for feature in features_of(view_name):
        if feature.dtype == "int64":
            values.append(sql.SQL("n % 50"))
        elif feature.dtype == "float64":
            values.append(sql.SQL("(n % 1000) / 10.0"))
        else:
            values.append(sql.Literal("walking"))
    columns = [sql.Identifier(f.name) for f in features_of(view_name)]
    return sql.SQL(
        "INSERT INTO {name} (user_id, event_timestamp, {columns}) "
        "SELECT 'h' || (n * 7919 % {users}), {start} + n * {step} * interval '1 microsecond', "
        "{values} FROM generate_series(0::bigint, {last}) AS n"
    ).format(
        name=sql.Identifier(name),
        columns=sql.SQL(", ").join(columns),
        users=sql.Literal(USERS),
        start=sql.Literal(midnight(day)),
        step=sql.Literal(86_400_000_000 // n),
        values=sql.SQL(", ").join(values),
        last=sql.Literal(n - 1),
    )


def _fill_day(conn: psycopg.Connection[Any], table: str, day: date, rows: sql.Composed) -> None:
    """A day's partition built apart and attached: its indexes are built sorted, once."""
    name = partition_name(table, day)
    held = _exists(conn, name)
    if held:
        return
    if held is False:  # made empty by a maintenance: replace it
        partitions.drop(conn, table, Partition(name, midnight(day), midnight(day) + DAY))
    with conn.transaction():
        conn.execute(
            sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS)").format(
                sql.Identifier(name), sql.Identifier(table)
            )
        )
        conn.execute(rows)
        partitions.attach_day(conn, table, day)
    conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(name)))
    conn.commit()


def history_days(days: int, today: date) -> list[date]:
    return [today - timedelta(days=n) for n in range(days, 0, -1)]


def fill(rows: int, days: int) -> dict[str, Any]:
    """The history schema, made and filled where a day is missing; two connections at once."""
    settings = _settings(HISTORY)
    with psycopg.connect(settings.postgres_conninfo()) as conn:
        found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (HISTORY,)).fetchone()
    if not found:
        create_schema(settings)
    per_day = rows // days
    today = datetime.now(UTC).date()
    wanted = history_days(days, today)
    began = time.monotonic()

    def archive() -> None:
        with _connect(settings) as conn:
            for n, day in enumerate(wanted, 1):
                name = partition_name("raw_events", day)
                _fill_day(conn, "raw_events", day, _archive_rows(name, day, per_day))
                print(
                    f"  history: archive {day} ({n}/{len(wanted)}), "
                    f"{time.monotonic() - began:,.0f} s",
                    flush=True,
                )

    def snapshots() -> None:
        share = per_day // len(VIEWS)
        with _connect(settings) as conn:
            for n, day in enumerate(wanted, 1):
                for spec in VIEWS:
                    name = partition_name(spec.table, day)
                    _fill_day(
                        conn,
                        spec.table,
                        day,
                        _snapshot_rows(spec.table, spec.name, name, day, share),
                    )
                print(
                    f"  history: snapshots {day} ({n}/{len(wanted)}), "
                    f"{time.monotonic() - began:,.0f} s",
                    flush=True,
                )

    failed: list[BaseException] = []

    def guarded(fill_some: Any) -> None:
        try:
            fill_some()
        except BaseException as exc:  # raised below, in the caller's thread
            failed.append(exc)

    threads = [threading.Thread(target=guarded, args=(f,)) for f in (archive, snapshots)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failed:
        raise failed[0]
    partitions.maintain(settings)  # today and the days ahead
    return {"seconds": round(time.monotonic() - began, 1), **held_rows(settings)}


def held_rows(settings: Settings) -> dict[str, Any]:
    """Rows in the archive and the snapshot tables (the planner's counts, kept by ANALYZE)."""
    with partitions.connect(settings) as conn:
        counts = {}
        for table in partitions.TABLES:
            row = conn.execute(
                "SELECT coalesce(sum(greatest(c.reltuples, 0)), 0)::bigint FROM pg_inherits i "
                "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(%s)",
                (table,),
            ).fetchone()
            counts[table] = int(row[0]) if row else 0
    return {
        "archive_rows": counts["raw_events"],
        "snapshot_rows": sum(v for k, v in counts.items() if k != "raw_events"),
    }


def empty_like(days: int) -> Settings:
    """A new schema with the history's day partitions (and the days ahead), all empty."""
    settings, _ = fresh_settings(True)
    today = datetime.now(UTC).date()
    with partitions.connect(settings) as conn:
        for table in partitions.TABLES:
            for day in history_days(days, today):
                partitions.create_day(conn, table, day, None, False)
    partitions.maintain(settings)
    return settings


def indexes(settings: Settings, hot: list[date]) -> dict[str, Any]:
    """The schema's index bytes, those of the partitions the traffic wrote, and the part of
    those in shared buffers."""
    names = [partition_name(t, d) for t in partitions.TABLES for d in hot]
    with partitions.connect(settings) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_buffercache SCHEMA public")
        conn.commit()
        total, hot_bytes, cached = conn.execute(
            """
            WITH idx AS (
                SELECT ix.indexrelid, t.relname AS table_name
                FROM pg_index ix JOIN pg_class t ON t.oid = ix.indrelid
                WHERE t.relnamespace = %(schema)s::regnamespace AND t.relkind = 'r'
            ), hot AS (SELECT indexrelid FROM idx WHERE table_name = ANY(%(names)s))
            SELECT
                (SELECT sum(pg_relation_size(indexrelid)) FROM idx),
                (SELECT sum(pg_relation_size(indexrelid)) FROM hot),
                (SELECT count(*) * current_setting('block_size')::bigint
                   FROM public.pg_buffercache b JOIN pg_class c
                     ON b.relfilenode = pg_relation_filenode(c.oid)
                  WHERE b.reldatabase = (SELECT oid FROM pg_database
                                          WHERE datname = current_database())
                    AND c.oid IN (SELECT indexrelid FROM hot))
            """,
            {"schema": settings.postgres_schema, "names": names},
        ).fetchone() or (0, 0, 0)
        shared = conn.execute("SELECT pg_size_bytes(current_setting('shared_buffers'))")
        buffers = (shared.fetchone() or (0,))[0]
    return {
        "all_bytes": int(total or 0),
        "written_bytes": int(hot_bytes or 0),
        "written_cached_bytes": int(cached or 0),
        "shared_buffers_bytes": int(buffers),
    }


def _dead(conn: psycopg.Connection[Any], schema: str) -> int:
    conn.execute("SELECT pg_stat_force_next_flush()")
    row = conn.execute(
        "SELECT coalesce(sum(n_dead_tup), 0) FROM pg_stat_user_tables WHERE schemaname = %s",
        (schema,),
    ).fetchone()
    conn.commit()
    return int(row[0]) if row else 0


def drop_oldest_day(settings: Settings) -> dict[str, Any]:
    """Detach and drop the oldest day partition of every table, timed; dead tuples around it."""
    with partitions.connect(settings) as conn:
        oldest = {}
        for table in partitions.TABLES:
            days = [p for p in partitions.partitions_of(conn, table) if p.start is not None]
            oldest[table] = min(days, key=lambda p: p.start or midnight(date.max))
        conn.commit()
        dead_before = _dead(conn, settings.postgres_schema)
        rows = 0
        for p in oldest.values():
            found = conn.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)", (p.name,)
            ).fetchone()
            rows += int(found[0]) if found else 0
        conn.commit()
        began = time.monotonic()
        for table, p in oldest.items():
            partitions.drop(conn, table, p)
        seconds = time.monotonic() - began
        dead_after = _dead(conn, settings.postgres_schema)
    day = next(iter(oldest.values())).start
    return {
        "day": f"{day:%Y-%m-%d}" if day else None,
        "rows": rows,
        "seconds": round(seconds, 3),
        "dead_tuples_before": dead_before,
        "dead_tuples_after": dead_after,
    }


def _batch(day: date, n: int, seq: int, batches: int) -> list[tuple[Any, ...]]:
    """`n` archive rows of the day's last hour, batch `seq` of `batches` later than the one
    before, in random order within it: a flush of many users' events as they arrive."""
    rows = []
    slice_us = 3_600_000_000 // batches
    begin = midnight(day) + timedelta(hours=23, microseconds=seq * slice_us)
    for i in range(n):
        event_id = str(uuid.uuid4())
        user = f"d{(seq * n + i) * 7919 % USERS}"
        # Not a secret: times in random order within the flush's slice of the hour.
        at = begin + timedelta(microseconds=random.randrange(slice_us))  # noqa: S311
        event = (
            f'{{"event_id":"{event_id}","user_id":"{user}","event_type":"activity",'
            f'"timestamp":"{at.isoformat()}","payload":{{"activity_type":"walking",'
            f'"duration_minutes":{i % 90},"energy_level":{1 + i % 10},"mood":{1 + i % 7},'
            f'"steps":{i % 20000}}}}}'
        )
        rows.append((event_id, user, "activity", at, event, "aurora.activity", i % 4, i, False))
    return rows


# The archive's key as migration 0008 makes it, time first, and the one measured before it.
LAYOUTS: dict[str, list[str]] = {
    "(event_timestamp, event_id)": [],
    "(event_id, event_timestamp) + (event_timestamp)": [
        "ALTER TABLE raw_events DROP CONSTRAINT raw_events_pkey",
        "ALTER TABLE raw_events ADD PRIMARY KEY (event_id, event_timestamp)",
        "CREATE INDEX raw_events_time ON raw_events (event_timestamp)",
    ],
}


def day_size(rows: int, batches: int, batch: int = 10_000) -> dict[str, Any]:
    """The archive's COPY into a day partition already holding `rows` (a 1M-user app's day at
    50M) beside the same into an empty day, batches alternating, for each key layout: the cost
    the partition interval and the key order decide. The full day holds its first 23 hours; the
    batches bring its last hour, in time order batch by batch, as the worker's flushes do.
    """
    settings = _settings(DAY_SCHEMA)
    drop_schema(settings)
    create_schema(settings)
    full, empty = date(2030, 1, 1), date(2030, 1, 2)
    layouts: dict[str, Any] = {}
    try:
        with _connect(settings) as conn:
            began = time.monotonic()
            name = partition_name("raw_events", full)
            _fill_day(conn, "raw_events", full, _archive_rows(name, full, rows, 23 * 3_600_000_000))
            filled_s = time.monotonic() - began
            partitions.create_day(conn, "raw_events", empty, None, False)
            conn.commit()
        for layout, statements in LAYOUTS.items():
            with _connect(settings) as conn:
                for statement in statements:
                    conn.execute(statement)
                conn.commit()
                found = conn.execute("SELECT pg_indexes_size(to_regclass(%s))", (name,)).fetchone()
            print(f"  day: {layout} ...", flush=True)
            layouts[layout] = {
                "full_day_index_bytes": int(found[0]) if found else 0,
                **_copy_batches(settings, full, empty, batches, batch),
            }
    finally:
        drop_schema(settings)
    return {
        "rows_in_full_day": rows,
        "fill_s": round(filled_s, 1),
        "batches": batches,
        "batch_rows": batch,
        "layouts": layouts,
    }


def _copy_batches(
    settings: Settings, full: date, empty: date, batches: int, batch: int
) -> dict[str, Any]:
    spent: dict[str, list[tuple[float, float]]] = {"empty": [], "full": []}
    with partitions.connect(settings) as conn:  # synchronous commits, as the worker's
        (pid,) = conn.execute("SELECT pg_backend_pid()").fetchone() or (0,)
        columns = ", ".join(ArchiveSink.COLUMNS)
        for n in range(batches):
            for case, day in (("empty", empty), ("full", full)):
                lines = _batch(day, batch, n, batches)
                cpu, wall = cpu_s(pid, reaped=False), time.monotonic()
                with (
                    conn.cursor() as cur,
                    cur.copy(f"COPY raw_events ({columns}) FROM STDIN") as copy,
                ):
                    for line in lines:
                        copy.write_row(line)
                conn.commit()
                spent[case].append((cpu_s(pid, reaped=False) - cpu, time.monotonic() - wall))
    # The first fifth warms the caches on both sides; it is left out.
    skip = batches // 5

    def per_row(case: str, at: int) -> float:
        kept = spent[case][skip:]
        return round(sum(s[at] for s in kept) / (len(kept) * batch) * 1e6, 2)

    cpu_us = {c: per_row(c, 0) for c in spent}
    return {
        "cpu_us_per_row": cpu_us,
        "wall_us_per_row": {c: per_row(c, 1) for c in spent},
        "cpu_ratio": round(cpu_us["full"] / cpu_us["empty"], 3),
    }


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    worker = report["worker"]
    cpu = worker["cpu"]
    return {
        "events": report["parameters"]["events"],
        "events_per_s": worker["events_per_s"],
        "steady_events_per_s": worker["steady_events_per_s"],
        "postgres_us_per_event": cpu["us_per_event"].get("postgres"),
        "total_us_per_event": cpu["total_us_per_event"],
        "measured": cpu["measured"],
    }


def run(rows: int, days: int, events: int, rounds: int) -> dict[str, Any]:
    print(f"history: {rows:,} archived and {rows:,} snapshot rows over {days} days ...", flush=True)
    filled = fill(rows, days)
    print(f"history holds {filled}", flush=True)
    full = _settings(HISTORY)
    load_before = os.getloadavg()[0]
    runs: dict[str, list[dict[str, Any]]] = {"empty": [], "full": []}
    for n in range(rounds):
        for case in ("empty", "full"):
            print(f"ingest, round {n + 1} of {rounds}: {case} ...", flush=True)
            if case == "empty":
                empty = empty_like(days)
                try:
                    report = bench_ingest.run(
                        events, TRAFFIC_DAYS, 0, schema=empty.postgres_schema, exact_count=False
                    )
                finally:
                    drop_schema(empty)
            else:
                report = bench_ingest.run(
                    events, TRAFFIC_DAYS, 0, schema=HISTORY, exact_count=False
                )
            runs[case].append(_summary(report))
    today = datetime.now(UTC).date()
    hot = [today - timedelta(days=d) for d in range(TRAFFIC_DAYS + 1)]
    index = indexes(full, hot)
    history = held_rows(full)
    dropped = drop_oldest_day(full)

    def best(case: str, key: str, pick: Any) -> float:
        values = [r[key] for r in runs[case] if r[key] is not None]
        return float(pick(values)) if values else float("nan")

    rate = {c: best(c, "steady_events_per_s", max) for c in runs}
    cpu = {c: best(c, "postgres_us_per_event", min) for c in runs}
    ratios = {
        "events_per_s": round(rate["full"] / rate["empty"], 3),
        "postgres_cpu_per_event": round(cpu["full"] / cpu["empty"], 3),
    }
    return {
        "parameters": {
            "history_rows_each": rows,
            "history_days": days,
            "events": events,
            "rounds": rounds,
            "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        },
        "fill": filled,
        "history": history,
        "runs": runs,
        "steady_events_per_s": rate,
        "postgres_us_per_event": cpu,
        "ratios": ratios,
        "indexes": index,
        "drop_day": dropped,
        "targets": {
            "rate_ratio_min": TARGET_RATE_RATIO,
            "cpu_ratio_max": TARGET_CPU_RATIO,
            "drop_s_max": TARGET_DROP_S,
            "met": {
                "events_per_s": ratios["events_per_s"] >= TARGET_RATE_RATIO,
                "postgres_cpu_per_event": ratios["postgres_cpu_per_event"] <= TARGET_CPU_RATIO,
                "drop_day": dropped["seconds"] < TARGET_DROP_S
                and dropped["dead_tuples_after"] <= dropped["dead_tuples_before"],
            },
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000_000, help="archived rows (and snapshot)")
    parser.add_argument("--days", type=int, default=64, help="days of history before today")
    parser.add_argument("--events", type=int, default=500_000, help="ingested per run")
    parser.add_argument("--rounds", type=int, default=2, help="each case measured")
    parser.add_argument("--fill-only", action="store_true", help="fill the history and stop")
    parser.add_argument(
        "--day-rows",
        type=int,
        default=0,
        help="instead: the archive's COPY into a day already holding this many rows (50M: a 1M-"
        "user app's day) beside an empty day; result <name>-day.json",
    )
    parser.add_argument("--day-batches", type=int, default=100, help="10,000-row COPYs per side")
    parser.add_argument(
        "--from-results", action="store_true", help="run nothing: redraw the table and chart"
    )
    parser.add_argument("--name", default="growth")
    args = parser.parse_args()
    if args.fill_only:
        print(fill(args.rows, args.days))
        return 0
    if args.day_rows:
        day = day_size(args.day_rows, args.day_batches)
        write_result(f"{args.name}-day", day)
        print(day)
        return 0
    if args.from_results:
        written = json.loads((RESULTS / f"{args.name}.json").read_text())
    else:
        report = run(args.rows, args.days, args.events, args.rounds)
        written = json.loads(write_result(args.name, report).read_text())
    chart = charts.growth(written, RESULTS / f"{args.name}.png")
    update_block(
        growth_table(written, f"results/{chart.name}"), args.name, "Latest growth benchmark"
    )
    r, x, d = written["steady_events_per_s"], written["ratios"], written["drop_day"]
    print(
        f"\nsteady ev/s: empty {r['empty']:,.0f}, full {r['full']:,.0f} ({x['events_per_s']}x); "
        f"Postgres us/event: {written['postgres_us_per_event']} ({x['postgres_cpu_per_event']}x)"
    )
    print(f"indexes: {written['indexes']}")
    print(f"drop a day: {d}")
    print(f"targets met: {written['targets']['met']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
