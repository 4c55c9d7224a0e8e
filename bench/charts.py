"""One PNG per suite run: a panel per benchmark, each figure beside its baseline."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display here, and none needed: the chart is a file

import matplotlib.pyplot as plt
from matplotlib.axes import Axes


def _bars(ax: Axes, labels: list[str], values: list[float], title: str, unit: str) -> None:
    bars = ax.bar(labels, values, color=["#3b7dd8", "#9aa5b1", "#d8873b", "#6aa84f"][: len(values)])
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(unit)
    for bar, value in zip(bars, values, strict=True):
        ax.annotate(
            f"{value:,.0f}",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )


def ingest(ax: Axes, report: dict[str, Any]) -> None:
    _bars(
        ax,
        ["worker", "ceiling\n(consume only)", "naive\n(push per event)"],
        [
            report["worker"]["events_per_s"],
            report["ceiling"]["events_per_s"],
            report["naive"]["events_per_s"],
        ],
        f"Ingest, {report['parameters']['events']:,} events",
        "events/s (log)",
    )
    ax.set_yscale("log")


def freshness(ax: Axes, report: dict[str, Any]) -> None:
    rates = [r for r in report["rates"] if r["p50_ms"] is not None]
    x = [f"{r['target_eps']:,}/s" for r in rates]
    for key, marker in (("p50_ms", "o"), ("p95_ms", "s"), ("p99_ms", "^")):
        ax.plot(x, [r[key] for r in rates], marker=marker, label=key.removesuffix("_ms"))
    ax.axhline(1000, color="red", linestyle=":", linewidth=1, label="target p99 at 5k/s")
    ax.set_yscale("log")
    ax.set_title("Freshness: produced to readable online", fontsize=10)
    ax.set_ylabel("ms (log)")
    ax.legend(fontsize=7)


def online(ax: Axes, report: dict[str, Any]) -> None:
    cases = [c for c in report["cases"] if c["rows"] == 1]
    services = sorted({c["service"] for c in cases})
    paths = ["in_process", "in_process_plain", "http", "http_plain"]
    width = 0.8 / len(paths)
    for i, path in enumerate(paths):
        by_service = {c["service"]: c["p99_ms"] for c in cases if c["path"] == path}
        ax.bar(
            [s + i * width for s in range(len(services))],
            [by_service.get(s, 0.0) for s in services],
            width,
            label=path,
        )
    ax.set_xticks([s + 0.4 - width / 2 for s in range(len(services))])
    ax.set_xticklabels([s.removesuffix("_v1") for s in services], fontsize=7)
    ax.set_title("Online reads, 1 row: p99", fontsize=10)
    ax.set_ylabel("ms")
    ax.legend(fontsize=7)


def replay(ax: Axes, report: dict[str, Any]) -> None:
    labels = ["replay", "read only", "compute only"]
    values = [
        report["replay"]["events_per_s"],
        report["read"]["events_per_s"],
        report["compute"]["events_per_s"],
    ]
    if report.get("stream_events_per_s"):
        labels.append("stream")
        values.append(report["stream_events_per_s"])
    sharded = report.get("sharded")
    if sharded:
        labels += ["1 shard", f"{sharded['processes']} shards"]
        values += [sharded["one_events_per_s"], sharded["many_events_per_s"]]
    _bars(ax, labels, values, "Replay from Postgres", "events/s")


def memory(ax: Axes, report: dict[str, Any]) -> None:
    rows = report["users"]
    x = [f"{r['users']:,} users" for r in rows]
    keys = ["state_bytes_per_user", "object_bytes_per_user", "worker_rss_bytes_per_user"]
    width = 0.8 / len(keys)
    for i, key in enumerate(keys):
        values = [r.get(key) or 0 for r in rows]
        ax.bar([j + i * width for j in range(len(rows))], values, width, label=key[:-9])
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(rows))])
    ax.set_xticklabels(x, fontsize=8)
    ax.set_title("Memory per active user", fontsize=10)
    ax.set_ylabel("bytes")
    ax.legend(fontsize=7)


def growth(report: dict[str, Any], path: Path) -> Path:
    """bench.bench_growth: events/s and Postgres CPU per event, empty tables beside full."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.8))
    labels = ["empty tables", f"{report['history']['archive_rows'] / 1e6:,.0f}M-row history"]
    rate, cpu = report["steady_events_per_s"], report["postgres_us_per_event"]
    _bars(left, labels, [rate["empty"], rate["full"]], "Worker, steady", "events/s")
    _bars(right, labels, [cpu["empty"], cpu["full"]], "Postgres CPU per event", "us")
    fig.suptitle("Ingest beside a long history (bench.bench_growth)", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


PANELS = {
    "ingest": ingest,
    "freshness": freshness,
    "online": online,
    "replay": replay,
    "memory": memory,
}


def draw(reports: dict[str, dict[str, Any]], path: Path, title: str) -> Path:
    """The run's reports (by benchmark) as one PNG of panels."""
    present = [name for name in PANELS if name in reports]
    columns = 3 if len(present) > 2 else len(present) or 1
    rows = -(-len(present) // columns) or 1
    fig, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 4 * rows), squeeze=False)
    for ax, name in zip(axes.flat, present, strict=False):
        PANELS[name](ax, reports[name])
    for ax in list(axes.flat)[len(present) :]:
        ax.axis("off")
    # Wrapped to the figure's width: a title rebuilt from several runs says which, at length.
    fig.suptitle("\n".join(textwrap.wrap(title, int(30 * columns))), fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
