"""Soak: a worker under steady load for minutes, RSS and consumer lag sampled; no growth allowed.

Mixed generated traffic goes out at a fixed rate (default 80% of the worker's measured rate,
from `bench/results/ingest.json`, else 1,200 events/s) for `--minutes`, then the run waits for
the lag to drain. Every 5 s it samples the worker's RSS (with its writer process) and the
consumer group's lag over the event topics. It fails (exit 1) when:

- RSS grows: the median of the last quarter of the load is more than 10% above the median of
  the third. The traffic is a fixed population over 60 days of event time, sent in event-time
  order, so by the middle of the run every user has appeared and holds a full 30 days of tiles:
  the first half is warm-up, the second half must be flat;
- the lag does not come back near 0 (at most 1% of the events) within 2 minutes of the end;
- the worker exits.

    make soak                                    # 10 minutes
    .venv/bin/python -m bench.soak --minutes 2 --rate 500
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from typing import Any

from bench.bench_freshness import producer_for
from bench.bench_ingest import traffic_config
from bench.common import (
    RESULTS,
    delete_run_leftovers,
    fresh_settings,
    start_worker,
    stop_worker,
    tree_rss_mib,
    write_result,
)
from stream.catalog import EVENT_TYPES
from stream.ops.status import kafka
from stream.ops.topics import ensure_topics
from stream.settings import Settings
from stream.synth.generator import generate

SAMPLE_EVERY_S = 5.0
TICK_S = 0.05
GROWTH_LIMIT = 0.10
DRAIN_S = 120.0
# A fixed population over 60 days of event time: the users all appear in the first days and
# their 30-day windows are full by the middle of the run, so the second half is steady state.
DAYS = 60


def soak_traffic(
    settings: Settings, events: int, seed: int, prefix: str
) -> tuple[list[tuple[str, bytes, bytes]], int]:
    """`events` messages from a fixed population over DAYS days, in event-time order.

    Only the bytes are kept, as the generator streams them: 4.75M events (80% of 9,900
    events/s for 10 minutes) had the soak at 23 GB of the 24 GiB, most of it orjson's 4 KB
    allocation per message (stream/synth/generator.py now copies each to its length).
    """
    topics: dict[str, str] = {t: settings.topic_for(t) for t in EVENT_TYPES}
    wire: list[tuple[str, bytes, bytes]] = []
    users: set[str] = set()
    for g in generate(traffic_config(events, DAYS, seed, prefix)):
        if len(wire) == events:
            break
        wire.append((topics[g.event_type or "activity"], g.key, g.raw))
        if g.user_id:
            users.add(g.user_id)
    return wire, len(users)


def default_rate() -> float:
    path = RESULTS / "ingest.json"
    if path.exists():
        return round(0.8 * float(json.loads(path.read_text())["worker"]["events_per_s"]))
    return 1200.0


def lag(settings: Settings) -> int:
    """Events in the event topics not yet committed by the worker's consumer group."""
    return sum(kafka(settings)[0].values())


async def produce(settings: Settings, wire: list[tuple[str, bytes, bytes]], rate: float) -> float:
    """Send `wire` at `rate` events/s; the seconds it took."""
    producer = producer_for(settings)
    await producer.start()
    try:
        began = time.monotonic()
        sent = tick = 0
        while sent < len(wire):
            due = min(len(wire), round(rate * (tick + 1) * TICK_S))
            while sent < due:
                topic, key, raw = wire[sent]
                await producer.send(topic, raw, key=key)
                sent += 1
            tick += 1
            await asyncio.sleep(max(0.0, began + tick * TICK_S - time.monotonic()))
        await producer.flush()
        return time.monotonic() - began
    finally:
        await producer.stop()


def run(minutes: float, rate: float) -> dict[str, Any]:
    settings, prefix = fresh_settings()
    events = round(minutes * 60 * rate)
    print(f"soak: {events:,} events at {rate:,.0f}/s for {minutes:g} min", flush=True)
    wire, users = soak_traffic(settings, events, int(prefix[5:13], 16), prefix)
    ensure_topics(settings)
    worker = start_worker(settings, "soak")
    samples: list[dict[str, float]] = []
    began = time.monotonic()

    async def sample_until(done: asyncio.Future[float]) -> None:
        while not done.done():
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited ({worker.returncode})")
            samples.append(
                {
                    "t_s": round(time.monotonic() - began, 1),
                    "rss_mib": round(tree_rss_mib(worker.pid), 1),
                    "lag": lag(settings),
                }
            )
            last = samples[-1]
            print(f"  {last['t_s']:>6.0f}s  RSS {last['rss_mib']:>6.0f} MiB  lag {last['lag']:>7,}")
            await asyncio.sleep(SAMPLE_EVERY_S)

    async def load() -> float:
        sending = asyncio.ensure_future(produce(settings, wire, rate))
        await asyncio.gather(sending, sample_until(sending))
        return sending.result()

    try:
        time.sleep(15)  # the worker's start-up is not load
        began = time.monotonic()
        send_s = asyncio.run(load())
        load_samples = list(samples)
        drain_began = time.monotonic()
        final_lag = lag(settings)
        while final_lag > events * 0.01 and time.monotonic() - drain_began < DRAIN_S:
            time.sleep(SAMPLE_EVERY_S)
            final_lag = lag(settings)
        drained_s = time.monotonic() - drain_began
        alive = worker.poll() is None
    finally:
        stop_worker(worker)
        delete_run_leftovers(settings)

    rss = [s["rss_mib"] for s in load_samples]
    quarter = max(1, len(rss) // 4)
    third, last = rss[2 * quarter : 3 * quarter] or rss, rss[-quarter:]
    growth = statistics.median(last) / statistics.median(third) - 1
    checks = {
        "rss_growth_below_10pct": growth <= GROWTH_LIMIT,
        "lag_drained": final_lag <= events * 0.01,
        "worker_alive": alive,
    }
    return {
        "parameters": {"minutes": minutes, "rate_eps": rate, "events": len(wire), "users": users},
        "achieved_eps": round(len(wire) / send_s),
        "rss_growth": round(growth, 4),
        "peak_rss_mib": max(rss) if rss else None,
        "max_lag": max((s["lag"] for s in load_samples), default=0),
        "final_lag": final_lag,
        "drained_s": round(drained_s, 1),
        "checks": checks,
        "passed": all(checks.values()),
        "samples": load_samples,
    }


def chart(report: dict[str, Any], name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = report["samples"]
    fig, rss_ax = plt.subplots(figsize=(8, 4))
    t = [s["t_s"] / 60 for s in samples]
    rss_ax.plot(t, [s["rss_mib"] for s in samples], color="#3b7dd8", label="RSS (MiB)")
    rss_ax.set_xlabel("minutes")
    rss_ax.set_ylabel("worker RSS, MiB")
    lag_ax = rss_ax.twinx()
    lag_ax.plot(t, [s["lag"] for s in samples], color="#d8873b", label="lag (events)")
    lag_ax.set_ylabel("consumer lag, events")
    p = report["parameters"]
    rss_ax.set_title(
        f"Soak: {p['rate_eps']:,.0f} events/s for {p['minutes']:g} min, RSS growth "
        f"{report['rss_growth']:+.1%}, {'passed' if report['passed'] else 'FAILED'}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(RESULTS / f"{name}.png", dpi=90)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=None, help="events/s (default: 80%%)")
    parser.add_argument("--name", default="soak")
    args = parser.parse_args()
    report = run(args.minutes, args.rate or default_rate())
    write_result(args.name, report)
    chart(report, args.name)
    print(
        f"achieved {report['achieved_eps']:,} ev/s | RSS growth {report['rss_growth']:+.1%} | "
        f"max lag {report['max_lag']:,} | final lag {report['final_lag']:,} | "
        f"{'PASSED' if report['passed'] else 'FAILED'} {report['checks']}"
    )
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
