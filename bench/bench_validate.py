"""Validate + encode per event: ours (jsonschema-rs verdict) against interpreted jsonschema.

Both paths check the same generated events against the same schema files, run the same
semantic checks and encode with orjson, so the difference is the schema engine alone. Rounds
alternate between the two paths so that drift in the machine's speed hits both. Writes
bench/results/validate.json (machine, versions, parameters, raw samples) and prints a table.

    python bench/bench_validate.py [--events 10000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import fastjsonschema
import orjson
from jsonschema import Draft202012Validator, ValidationError
from referencing import Registry, Resource

from stream.catalog import EVENT_TYPES
from stream.core import events as contract
from stream.core.events import (
    SCHEMA_BASE_URI,
    SCHEMA_DIR,
    check_semantics,
    encode,
    load_schema,
    validate,
)
from stream.errors import EventValidationError
from stream.synth.generator import GeneratorConfig, generate

RESULTS = Path(__file__).resolve().parent / "results" / "validate.json"
Event = dict[str, Any]


def baseline_validators() -> dict[str, Draft202012Validator]:
    """jsonschema's 2020-12 validator over the same files, $refs resolved from a local registry."""
    resources = []
    for path in sorted(SCHEMA_DIR.glob("*.json")):
        schema = load_schema(path.stem)
        resources.append((schema["$id"], Resource.from_contents(dict(schema))))
    registry: Registry[Any] = Registry().with_resources(resources)
    return {
        t: Draft202012Validator(dict(load_schema(f"{t}.v1")), registry=registry)
        for t in EVENT_TYPES
    }


def compiled_schema_only() -> dict[str, Callable[[Event], Event]]:
    def local(uri: str) -> Mapping[str, Any]:
        return load_schema(uri.removeprefix(SCHEMA_BASE_URI).removesuffix(".json"))

    return {
        t: fastjsonschema.compile(
            dict(load_schema(f"{t}.v1")),
            handlers={"https": local},
            use_default=False,
            use_formats=False,
        )
        for t in EVENT_TYPES
    }


def time_per_event(path: Callable[[Event], object], events: list[Event]) -> float:
    started = time.perf_counter()
    for event in events:
        path(event)
    return (time.perf_counter() - started) / len(events) * 1e6


def machine() -> dict[str, Any]:
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "commit": commit,
        "versions": {
            name: version(name)
            for name in ("fastjsonschema", "jsonschema", "jsonschema-rs", "orjson")
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    config = GeneratorConfig(
        users=max(10, args.events // 60), days=7, seed=args.seed,
        start=datetime(2024, 3, 4, tzinfo=UTC), invalid=0.05,
    )  # fmt: skip
    generated = list(generate(config))
    events = [g.event for g in generated if g.event is not None][: args.events]
    broken = [orjson.loads(g.raw) for g in generated if not g.valid and _is_object(g.raw)]
    mix = {t: sum(1 for e in events if e["event_type"] == t) for t in EVENT_TYPES}

    baseline = baseline_validators()
    compiled = compiled_schema_only()
    native = contract._checks()

    def ours(event: Event) -> bytes:
        return encode(validate(event))

    def theirs(event: Event) -> bytes:
        baseline[event["event_type"]].validate(event)
        check_semantics(event)
        return encode(event)

    def ours_schema(event: Event) -> object:
        return compiled[event["event_type"]](event)

    def theirs_schema(event: Event) -> object:
        baseline[event["event_type"]].validate(event)
        return None

    paths = {
        "ours (jsonschema-rs verdict): validate + encode": ours,
        "jsonschema (interpreted): validate + encode": theirs,
        "fastjsonschema: schema only": ours_schema,
        "jsonschema: schema only": theirs_schema,
        # The verdict alone, which `validate` now runs first (stream/core/events.py).
        "jsonschema-rs: schema only": lambda e: native[e["event_type"]](e),
    }
    for path in paths.values():  # warm-up: imports, caches, first-call compilation
        time_per_event(path, events[:500])
    samples: dict[str, list[float]] = {name: [] for name in paths}
    for round_number in range(args.rounds):
        order = list(paths) if round_number % 2 == 0 else list(reversed(paths))
        for name in order:
            samples[name].append(time_per_event(paths[name], events))

    agree = sum(1 for e in broken if _rejects(ours, e) and _rejects(theirs, e))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    ours_full, theirs_full, ours_only, theirs_only, _ = paths
    full_ratio = medians[theirs_full] / medians[ours_full]
    schema_ratio = medians[theirs_only] / medians[ours_only]

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "validate + encode per event",
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": machine(),
                "parameters": {
                    "events": len(events),
                    "rounds": args.rounds,
                    "seed": args.seed,
                    "generator": {"users": config.users, "days": config.days},
                    "event_mix": mix,
                },
                "unit": "microseconds per event, one sample per round (mean over all events)",
                "samples": samples,
                "median": medians,
                "ratio_interpreted_over_compiled": {
                    "validate_and_encode": full_ratio,
                    "schema_only": schema_ratio,
                },
                "invalid_events_rejected_by_both": f"{agree}/{len(broken)}",
            },
            indent=2,
        )
        + "\n"
    )

    width = max(len(name) for name in paths)
    print(f"{len(events)} generated events, {args.rounds} rounds; µs/event (median, min, max)")
    for name, values in samples.items():
        print(f"  {name:<{width}}  {medians[name]:8.2f}  {min(values):8.2f}  {max(values):8.2f}")
    print(f"  interpreted / compiled, validate + encode: {full_ratio:.1f}x")
    print(f"  interpreted / compiled, schema only:       {schema_ratio:.1f}x")
    print(f"  invalid generated events rejected by both: {agree}/{len(broken)}")
    print(f"  raw samples: {RESULTS}")


def _is_object(raw: bytes) -> bool:
    try:
        return isinstance(orjson.loads(raw), dict)
    except orjson.JSONDecodeError:
        return False


def _rejects(path: Callable[[Event], object], event: Event) -> bool:
    try:
        path(event)
    except (EventValidationError, ValidationError):
        return True
    except KeyError:
        return True  # the baseline's dispatch on event_type found no schema
    return False


if __name__ == "__main__":
    main()
