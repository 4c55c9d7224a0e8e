"""Freshness under load: event produced to readable through `get_online_features`, per rate.

For each target rate (1k, 5k, 10k events/s by default), with a worker and topics of its own:

- the rate's worker (`python -m stream worker`, fresh settings: topics, consumer group, user ids)
  is warmed up first: one activity event is sent and awaited until `get_online_features` serves
  it, so Faust's start-up and the writer process's Feast import are not measured;
- mixed generated traffic (a day of a population sized to the run, 2% late, 1% duplicates, 0.5%
  invalid; event times within the last 24 hours, so they aggregate into the windows as live
  traffic does) is sent at the target rate for `--seconds`, in 10 ms ticks that catch up when a
  tick runs late and stop at the deadline, so the achieved rate is what went out in that time;
- among it, probes: one activity event, timestamped now, for each of `--probes` users of their
  own, spread evenly over the run. `t_produced` is taken just before the probe's send. A poller
  thread reads `user_activity_features:activity_count_24h` for every outstanding probe user in
  one `get_online_features` call per poll (5 ms apart) and takes `t_readable` when the call that
  first shows the count at 1 returns: freshness is `t_readable - t_produced`, read cost included;
- a probe not served within `--timeout` seconds of its send counts as unreadable. Percentiles
  are over the readable probes only, so a rate with unreadable probes has percentiles that are a
  lower bound (the table marks them >=) and does not meet the target.

A fresh worker and fresh topics per rate, rather than one worker drained between rates: above its
sustained rate (about 2,000 events/s alone on the machine) the worker builds a backlog that takes
longer to drain than a worker takes to start, and a fresh worker carries no state, memory or lag
from one rate into the next, whatever order the rates run in. The workers of all rates are
started together at the beginning and warmed up, so their start-ups (10-15 s each on 2 cores)
overlap; a worker that is not being measured sits idle (about 1% of a core, measured) until its
rate, and each is stopped, backlog abandoned, once its probes are all readable or timed out. The
run's topics are deleted at the end.

The load goes out through aiokafka, configured as `stream.producer.EventProducer` is (acks=all,
idempotent, linger 10 ms, its compression codec, the user id as key, hence the same partitions).
EventProducer itself is kafka-python, which spends about 160 us of Python per send (record
accumulator, locks, a wake-up of its sender thread): about 6,000 events/s flat out on the 2-core
machine, short of 10k, where aiokafka sends over 20,000. The producer and
the poller share the machine with the worker: with hundreds of probes outstanding the poller alone
takes up to half a core, so `parameters.per_rate` reports its CPU share and mean poll time (the
resolution of `t_readable`) beside the worker's start-up and the time spent waiting for probes.

The target (issue #7): p99 <= 1 s at 5,000 events/s, with no probe unreadable.

    .venv/bin/python -m bench.bench_freshness [--rates 1000,5000,10000] [--seconds 30]

`--quick` (8 s per rate, probes time out after 10 s) takes about 90 s; the full run about 4 min.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import orjson

from bench.common import (
    delete_run_leftovers,
    fresh_settings,
    start_worker,
    stop_worker,
    write_result,
)
from stream.catalog import EVENT_TYPES
from stream.core.events import Event, validate
from stream.featurestore.env import open_store
from stream.ops.topics import ensure_topics
from stream.producer import LINGER_MS, pick_compression
from stream.settings import Settings
from stream.synth.generator import GeneratorConfig, default_start, generate

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer
    from feast import FeatureStore

RATES: Final = (1000, 5000, 10000)
TARGET_RATE: Final = 5000
TARGET_P99_MS: Final = 1000.0
TICK_S: Final = 0.01
POLL_GAP_S: Final = 0.005
PROBES_PER_S: Final = 20
EVENTS_PER_USER_DAY: Final = 11  # a little under the generator's average, so a day is enough
FEATURE: Final = "activity_count_24h"
FEATURE_REF: Final = f"user_activity_features:{FEATURE}"
WARM_UP_TIMEOUT_S: Final = 180.0

Wire = tuple[str, bytes, bytes]  # topic, key, value


@dataclass
class Outcome:
    """What became of the probes of one poller; the poller fills it, the main thread reads it."""

    latencies_s: dict[str, float] = field(default_factory=dict)
    produced_at: dict[str, float] = field(default_factory=dict)  # of the readable probes
    unreadable: list[str] = field(default_factory=list)
    polls: int = 0
    poll_s: float = 0.0
    cpu_s: float = 0.0
    wall_s: float = 0.0


@dataclass
class Lane:
    """One rate's worker, topics and traffic."""

    rate: int
    settings: Settings
    prefix: str
    worker: subprocess.Popen[bytes]
    started: float
    ready_s: float | None = None
    background: list[Wire] = field(default_factory=list)
    users: int = 0


class Poller(threading.Thread):
    """Poll the outstanding probe users, one `get_online_features` call per poll."""

    def __init__(self, store: FeatureStore) -> None:
        super().__init__(name="freshness-poller", daemon=True)
        self.store = store
        self.outcome = Outcome()
        self.error: BaseException | None = None
        self._submitted: queue.SimpleQueue[tuple[str, float, float]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._halt = threading.Event()

    def submit(self, user_id: str, produced: float, timeout_s: float) -> None:
        self._submitted.put((user_id, produced, produced + timeout_s))

    def resolved(self) -> int:
        with self._lock:
            return len(self.outcome.latencies_s) + len(self.outcome.unreadable)

    def latency(self, user_id: str) -> float | None:
        with self._lock:
            return self.outcome.latencies_s.get(user_id)

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(timeout=30)

    def run(self) -> None:
        try:
            self._poll_forever()
        except BaseException as exc:  # the main thread re-raises it
            self.error = exc

    def _poll_forever(self) -> None:
        outstanding: dict[str, tuple[float, float]] = {}
        cpu_began, wall_began = time.thread_time(), time.monotonic()
        while not self._halt.is_set():
            while True:
                try:
                    user_id, produced, deadline = self._submitted.get_nowait()
                except queue.Empty:
                    break
                outstanding[user_id] = (produced, deadline)
            if not outstanding:
                time.sleep(POLL_GAP_S)
                continue
            users = list(outstanding)
            began = time.time()
            values = self.store.get_online_features(
                features=[FEATURE_REF], entity_rows=[{"user_id": u} for u in users]
            ).to_dict()[FEATURE]
            # The end of the call: a client that asked then had the value by now.
            seen = time.time()
            with self._lock:
                self.outcome.polls += 1
                self.outcome.poll_s += seen - began
                for user_id, value in zip(users, values, strict=True):
                    produced, deadline = outstanding[user_id]
                    if value is not None and value >= 1:
                        self.outcome.latencies_s[user_id] = seen - produced
                        self.outcome.produced_at[user_id] = produced
                        del outstanding[user_id]
                    elif seen > deadline:
                        self.outcome.unreadable.append(user_id)
                        del outstanding[user_id]
            # Leave the GIL and the CPU to the producer and the worker between polls.
            time.sleep(POLL_GAP_S)
        self.outcome.cpu_s = time.thread_time() - cpu_began
        self.outcome.wall_s = time.monotonic() - wall_began


def traffic(settings: Settings, events: int, seed: int, prefix: str) -> tuple[list[Wire], int]:
    """`events` messages of a day of mixed traffic (times within the last 24 h), and the users."""
    if events <= 0:
        return [], 0
    topics: dict[str, str] = {t: settings.topic_for(t) for t in EVENT_TYPES}
    users = max(1, math.ceil(events / EVENTS_PER_USER_DAY))
    while True:
        config = GeneratorConfig(
            users=users,
            days=1,
            seed=seed,
            start=default_start(datetime.now(UTC), 1),
            out_of_order=0.02,
            duplicates=0.01,
            invalid=0.005,
            user_prefix=prefix,
        )
        # Only the wire bytes are kept: the parsed events of 300k messages would weigh a lot more.
        wire = [(topics[g.event_type or "activity"], g.key, g.raw) for g in generate(config)]
        if len(wire) >= events:
            return wire[:events], users
        users = math.ceil(users * 1.2)


def activity_template(seed: int) -> Event:
    config = GeneratorConfig(users=20, days=1, seed=seed, start=default_start(datetime.now(UTC), 1))
    return next(
        g.event
        for g in generate(config)
        if g.valid and g.event is not None and g.event["event_type"] == "activity"
    )


def probe_bytes(template: Event, user_id: str) -> bytes:
    """A valid activity event for `user_id` at this instant: its 24h count becomes 1."""
    event = {
        **template,
        "event_id": str(uuid.uuid4()),
        "user_id": user_id,
        "event_timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }
    return orjson.dumps(validate(event))


def producer_for(settings: Settings) -> AIOKafkaProducer:
    from aiokafka import AIOKafkaProducer

    compression = pick_compression()
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id="aurora-bench-freshness",
        acks="all",
        enable_idempotence=True,
        linger_ms=LINGER_MS,
        compression_type=None if compression == "none" else compression,
        **settings.aiokafka_client_config(),
    )


def alive(lane: Lane) -> None:
    if lane.worker.poll() is not None:
        raise RuntimeError(f"the {lane.rate}/s worker exited ({lane.worker.returncode})")


async def warm_up(lanes: list[Lane], poller: Poller, template: Event) -> None:
    """One event per worker, each awaited until it is served: every worker is then consuming."""
    producer = producer_for(lanes[0].settings)
    await producer.start()
    try:
        for lane in lanes:
            user_id = f"{lane.prefix}warmup"
            poller.submit(user_id, time.time(), WARM_UP_TIMEOUT_S)
            raw = probe_bytes(template, user_id)
            await producer.send_and_wait(
                lane.settings.topic_for("activity"), raw, key=user_id.encode()
            )
    finally:
        await producer.stop()
    waiting = list(lanes)
    while waiting:
        poller.check()
        for lane in list(waiting):
            alive(lane)
            if poller.latency(f"{lane.prefix}warmup") is not None:
                lane.ready_s = time.monotonic() - lane.started
                waiting.remove(lane)
                print(f"  {lane.rate:,}/s worker ready {lane.ready_s:.1f}s after its start")
            elif time.monotonic() - lane.started > WARM_UP_TIMEOUT_S:
                raise TimeoutError(f"the {lane.rate}/s worker served nothing in time")
        await asyncio.sleep(0.1)


async def send_at_rate(
    lane: Lane,
    poller: Poller,
    probe_users: list[str],
    template: Event,
    seconds: float,
    timeout_s: float,
) -> tuple[int, int, float]:
    """Send the lane's traffic and probes at its rate for `seconds`: (events, probes, seconds)."""
    producer = producer_for(lane.settings)
    await producer.start()
    failures: list[BaseException] = []

    def on_done(future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and (error := future.exception()) is not None:
            failures.append(error)

    try:
        activity = lane.settings.topic_for("activity")
        for topic in {t for t, _, _ in lane.background} | {activity}:
            # Fetch metadata now: the first send to a topic would otherwise wait for it mid-run.
            await producer.partitions_for(topic)
        background = lane.background
        probe_every = seconds / max(1, len(probe_users))
        total = len(background) + len(probe_users)
        sent = next_background = next_probe = tick = 0
        began = time.monotonic()
        ended = began
        while time.monotonic() - began < seconds:
            # What should be out by the end of this tick; a late tick sends its arrears too.
            due = min(total, round(lane.rate * (tick + 1) * TICK_S))
            while sent < due:
                if (
                    next_probe < len(probe_users)
                    and (next_probe + 0.5) * probe_every <= time.monotonic() - began
                ):
                    user_id = probe_users[next_probe]
                    raw = probe_bytes(template, user_id)
                    produced = time.time()
                    future = await producer.send(activity, raw, key=user_id.encode())
                    poller.submit(user_id, produced, timeout_s)
                    next_probe += 1
                elif next_background < len(background):
                    topic, key, raw = background[next_background]
                    future = await producer.send(topic, raw, key=key)
                    next_background += 1
                else:
                    break
                future.add_done_callback(on_done)
                sent += 1
            ended = time.monotonic()
            tick += 1
            # Sleep even when late: aiokafka's sender runs on this loop and must get its turn.
            await asyncio.sleep(max(0.0, began + tick * TICK_S - time.monotonic()))
            alive(lane)
        await producer.flush()
        if failures:
            raise RuntimeError(f"{len(failures)} sends failed; first: {failures[0]!r}")
        return sent, next_probe, max(ended - began, TICK_S)
    finally:
        await producer.stop()


def series(outcome: Outcome) -> list[tuple[float, float]]:
    sent = sorted((at, user) for user, at in outcome.produced_at.items())
    first = sent[0][0] if sent else 0.0
    return [(round(at - first, 2), round(outcome.latencies_s[user] * 1000, 1)) for at, user in sent]


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending sequence."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def measure(
    lane: Lane, store: FeatureStore, template: Event, seconds: float, probes: int, timeout_s: float
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One rate on its warm worker, which is stopped at the end: (result, diagnostics)."""
    print(f"rate {lane.rate:,}/s for {seconds:.0f}s ...", flush=True)
    alive(lane)
    probe_users = [f"{lane.prefix}probe{i:05d}" for i in range(probes)]
    poller = Poller(store)
    poller.start()
    try:
        sent, probes_sent, spent = asyncio.run(
            send_at_rate(lane, poller, probe_users, template, seconds, timeout_s)
        )
        achieved = sent / spent
        print(f"  sent {sent:,} events in {spent:.1f}s = {achieved:,.0f}/s", flush=True)
        began = last_print = time.monotonic()
        while poller.resolved() < probes_sent:
            poller.check()
            alive(lane)
            if time.monotonic() - began > timeout_s + 30:
                # Every probe is past its deadline by now: the poller itself is stuck.
                raise TimeoutError(f"probes unresolved {timeout_s + 30:.0f}s after the last send")
            if time.monotonic() - last_print > 5:
                last_print = time.monotonic()
                print(f"  {poller.resolved()}/{probes_sent} probes resolved", flush=True)
            time.sleep(0.1)
        waited = time.monotonic() - began
    finally:
        poller.stop()
        stop_worker(lane.worker)
    poller.check()
    outcome = poller.outcome
    samples = sorted(round(s * 1000, 1) for s in outcome.latencies_s.values())
    result = {
        "target_eps": lane.rate,
        "achieved_eps": round(achieved, 1),
        "events": sent,
        "probes": probes_sent,
        "readable": len(samples),
        "unreadable": len(outcome.unreadable),
        "p50_ms": percentile(samples, 0.50),
        "p95_ms": percentile(samples, 0.95),
        "p99_ms": percentile(samples, 0.99),
        "max_ms": samples[-1] if samples else None,
        "samples_ms": samples,
        # In the order sent: (seconds since the first probe, latency in ms). A standing delay and
        # a pause somewhere in the run look alike in the percentiles, not here.
        "series": series(outcome),
    }
    diagnostics = {
        "users": lane.users,
        "worker_ready_s": round(lane.ready_s or 0.0, 1),
        "send_s": round(spent, 2),
        "probe_wait_s": round(waited, 1),
        "polls": outcome.polls,
        "poll_ms_mean": round(1000 * outcome.poll_s / outcome.polls, 1) if outcome.polls else None,
        "poller_cpu_share": round(outcome.cpu_s / outcome.wall_s, 2) if outcome.wall_s else None,
    }
    return result, diagnostics


def run(
    quick: bool,
    rates: Sequence[int] = RATES,
    seconds: float | None = None,
    probes: int | None = None,
    timeout_s: float | None = None,
) -> dict[str, Any]:
    seconds = seconds if seconds is not None else (8.0 if quick else 30.0)
    probes = probes if probes is not None else round(PROBES_PER_S * seconds)
    timeout_s = timeout_s if timeout_s is not None else (10.0 if quick else 30.0)
    lanes: list[Lane] = []
    results: list[dict[str, Any]] = []
    diagnostics: dict[str, dict[str, Any]] = {}
    try:
        for rate in rates:
            settings, prefix = fresh_settings()
            ensure_topics(settings)
            worker = start_worker(settings, f"freshness-{rate}")
            lanes.append(Lane(rate, settings, prefix, worker, time.monotonic()))
        # While the workers start: Feast's first import, and the traffic.
        store = open_store(lanes[0].settings)
        seed = int(lanes[0].prefix[5:13], 16)
        template = activity_template(seed)
        for lane in lanes:
            wanted = max(0, round(lane.rate * seconds) - probes)
            print(f"generating {wanted:,} events for {lane.rate:,}/s ...", flush=True)
            lane.background, lane.users = traffic(
                lane.settings, wanted, seed + lane.rate, lane.prefix
            )
        poller = Poller(store)
        poller.start()
        try:
            asyncio.run(warm_up(lanes, poller, template))
        finally:
            poller.stop()
        poller.check()
        for lane in lanes:
            result, diagnostics[str(lane.rate)] = measure(
                lane, store, template, seconds, probes, timeout_s
            )
            lane.background = []
            results.append(result)
    finally:
        for lane in lanes:
            stop_worker(lane.worker)
        for lane in lanes:
            try:
                delete_run_leftovers(lane.settings)
            except Exception as exc:  # a leftover topic must not cost the results
                print(f"  could not delete the {lane.rate}/s topics: {exc!r}", flush=True)
    at_target = next((r for r in results if r["target_eps"] == TARGET_RATE), None)
    met = (
        at_target is not None
        and at_target["unreadable"] == 0
        and at_target["p99_ms"] is not None
        and at_target["p99_ms"] <= TARGET_P99_MS
    )
    settings = lanes[0].settings
    return {
        "parameters": {
            "quick": quick,
            "rates": list(rates),
            "seconds": seconds,
            "probes": probes,
            "timeout_s": timeout_s,
            "tick_ms": TICK_S * 1000,
            "poll_gap_ms": POLL_GAP_S * 1000,
            "feature": FEATURE_REF,
            "producer": f"aiokafka, acks=all, idempotent, linger {LINGER_MS} ms, "
            f"{pick_compression()}",
            "worker_batch_max": settings.worker_batch_max,
            "topic_partitions": settings.topic_partitions,
            # Kept out of the rate entries, whose shape is fixed.
            "per_rate": diagnostics,
        },
        "rates": results,
        "target": {"rate_eps": TARGET_RATE, "p99_ms_max": int(TARGET_P99_MS), "met": met},
    }


def _ms(value: float | None, bound: bool) -> str:
    if value is None:
        return "-"
    return f"{'>=' if bound else ''}{value:,.0f}"


def main() -> int:
    # A SIGTERM (or `timeout`) must still stop the workers: unwind through the finally blocks.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 s per rate, 10 s probe timeout")
    parser.add_argument("--rates", default=",".join(str(r) for r in RATES))
    parser.add_argument("--seconds", type=float, help="per rate (default 30, quick 8)")
    parser.add_argument("--probes", type=int, help=f"per rate (default {PROBES_PER_S} a second)")
    parser.add_argument("--timeout", type=float, help="seconds (default 30, quick 10)")
    parser.add_argument("--name", default="freshness")
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",") if r.strip()]
    if not rates or min(rates) <= 0:
        parser.error("--rates needs one or more positive rates")
    began = time.monotonic()
    report = run(args.quick, rates, args.seconds, args.probes, args.timeout)
    write_result(args.name, report)
    print(
        f"{'rate':>7} {'achieved':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} "
        f"{'unreadable':>10}"
    )
    for r in report["rates"]:
        bound = r["unreadable"] > 0
        print(
            f"{r['target_eps']:>7,} {r['achieved_eps']:>9,.0f} {_ms(r['p50_ms'], bound):>8} "
            f"{_ms(r['p95_ms'], bound):>8} {_ms(r['p99_ms'], bound):>8} "
            f"{_ms(r['max_ms'], bound):>8} {r['unreadable']:>4}/{r['probes']:<5}"
        )
    target = report["target"]
    print(
        f"target p99 <= {target['p99_ms_max']} ms at {target['rate_eps']:,}/s: "
        f"{'met' if target['met'] else 'not met'} ({time.monotonic() - began:.0f}s in all)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
