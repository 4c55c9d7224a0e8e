"""The latest figures as a Markdown table, kept in bench/README.md between two markers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parent / "README.md"


def _n(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _met(flag: bool | None) -> str:
    return "-" if flag is None else ("yes" if flag else "**no**")


def ingest_rows(r: dict[str, Any]) -> list[str]:
    w, c, n, x = r["worker"], r["ceiling"], r["naive"], r["ratios"]
    met = w["events_per_s"] >= 20_000 and x["worker_over_ceiling"] >= 0.5
    rows = [
        f"| ingest, {r['parameters']['events']:,} events | worker {_n(w['events_per_s'])} ev/s "
        f"(peak RSS {_n(w['peak_rss_mib'])} MiB) | ceiling {_n(c['events_per_s'])} ev/s; naive "
        f"{_n(n['events_per_s'], 1)} ev/s | {x['worker_over_ceiling']} of ceiling; "
        f"{x['worker_over_naive']}x naive | >= 20k ev/s and >= 0.5 of ceiling | {_met(met)} |"
    ]
    cpu = w.get("cpu")
    if cpu and w["steady_events_per_s"] is None:
        rows.append(
            f"| ingest, steady state | not measured: {_n(cpu['events'])} events after the first "
            "archived one, too few for a steady state | - | - | - | - |"
        )
    elif cpu:  # results written before the CPU meter have none
        parts = "; ".join(f"{k} {_n(v)}" for k, v in cpu["us_per_event"].items())
        # #5's target is what one worker sustains: the rate once it is up and consuming, which
        # leaves out its start (Feast's import, the group join); the row above keeps #7's
        # target, from the worker's start.
        sustained = w["steady_events_per_s"] >= 20_000 and r["parameters"].get("workers", 1) == 1
        rows.append(
            f"| ingest, steady state (from the first archived event) | "
            f"{_n(w['steady_events_per_s'])} ev/s; CPU {_n(cpu['total_us_per_event'])} us/event "
            f"({parts}); {cpu['cores_busy']} cores busy | - | - | "
            f">= 20k ev/s sustained by one worker | {_met(sustained)} |"
        )
    return rows


def freshness_rows(r: dict[str, Any]) -> list[str]:
    rows = []
    for rate in r["rates"]:
        is_target = rate["target_eps"] == r["target"]["rate_eps"]
        rows.append(
            f"| freshness at {rate['target_eps']:,} ev/s (achieved {_n(rate['achieved_eps'])}) | "
            f"p50 {_n(rate['p50_ms'])} / p95 {_n(rate['p95_ms'])} / p99 {_n(rate['p99_ms'])} ms "
            f"({rate['unreadable']} of {rate['probes']} probes unreadable) | - | - | "
            f"{'p99 <= 1,000 ms' if is_target else '-'} | "
            f"{_met(r['target']['met']) if is_target else '-'} |"
        )
    return rows


def online_rows(r: dict[str, Any]) -> list[str]:
    cases = {(c["service"], c["rows"], c["path"]): c for c in r["cases"]}
    rows = []
    for (service, n_rows, path), case in sorted(cases.items()):
        if path.endswith("_plain"):
            continue
        plain = cases.get((service, n_rows, f"{path}_plain"))
        target = None
        if service == "energy_prediction_v1" and n_rows == 1:
            target = 3.0 if path == "in_process" else 10.0
        rps = case.get("requests_per_s")
        rows.append(
            f"| online `{service}`, {n_rows} row{'s' if n_rows > 1 else ''}, {path} | "
            f"p50 {_n(case['p50_ms'], 2)} / p99 {_n(case['p99_ms'], 2)} ms"
            f"{f', {rps:,.0f} req/s' if rps else ''} | plain Feast read p99 "
            f"{_n(plain['p99_ms'] if plain else None, 2)} ms | "
            f"{_n(case['p99_ms'] / plain['p99_ms'], 2) + 'x' if plain else '-'} | "
            f"{f'p99 <= {target:.0f} ms' if target else '-'} | "
            f"{_met(case['p99_ms'] <= target) if target else '-'} |"
        )
    return rows


def access_rows(r: dict[str, Any]) -> list[str]:
    cases = {(c["path"], c["read"]): c for c in r["cases"]}
    service = r["parameters"]["service"]
    rows = []
    for read, label in (("service", f"`{service}`"), ("plain", "its stored features by reference")):
        on, off = cases["enforced", read], cases["open", read]
        rows.append(
            f"| online over HTTP, permissions enforced (OIDC token), {label}, 1 row | "
            f"p50 {_n(on['p50_ms'], 2)} / p99 {_n(on['p99_ms'], 2)} ms, "
            f"{_n(on['requests_per_s'])} req/s | no auth: p50 {_n(off['p50_ms'], 2)} / p99 "
            f"{_n(off['p99_ms'], 2)} ms, {_n(off['requests_per_s'])} req/s | "
            f"{_n(on['p50_ms'] / off['p50_ms'], 2)}x p50; "
            f"{_n(on['requests_per_s'] / off['requests_per_s'], 2)}x req/s | - | - |"
        )
    return rows


def own_runs(sharded: dict[str, Any]) -> list[dict[str, Any]]:
    """The sharded rounds' runs of the code measured, not of a `--baseline` checkout (results
    from before `--baseline` have no `code`)."""
    return [r for r in sharded["runs"] if r.get("code", "this") == "this"]


def replay_rows(r: dict[str, Any]) -> list[str]:
    p, x = r["replay"], r["ratios"]
    rows = [
        f"| replay from Postgres, {p['events']:,} events | {_n(p['events_per_s'])} ev/s "
        f"(peak RSS {_n(p['peak_rss_mib'])} MiB) | stream {_n(r['stream_events_per_s'])} ev/s; "
        f"read only {_n(r['read']['events_per_s'])}; compute only "
        f"{_n(r['compute']['events_per_s'])} | {x['replay_over_stream'] or '-'}x stream | "
        f">= 200k ev/s | {_met(r['target']['met'])} |"
    ]
    sharded = r.get("sharded")
    if sharded:  # results before #31 have none
        over = x["sharded_one_over_compute"]
        rows.append(
            f"| replay, one process (`make replay`, start-up included) against the aggregation "
            f"alone | {_n(sharded['one_events_per_s'])} ev/s | compute only "
            f"{_n(r['compute']['events_per_s'])} ev/s | {over} | >= 0.8 | {_met(over >= 0.8)} |"
        )
        n = sharded["processes"]
        many = [u for u in own_runs(sharded) if u["processes"] == n]
        cpu = "; ".join(f"{k} {v}" for k, v in many[-1]["us_per_event"].items())
        rows.append(
            f"| replay, {n} shards against 1 ({sharded['rounds']} alternating rounds, start-up "
            f"included) | {_n(sharded['many_events_per_s'])} ev/s; CPU us/event {cpu}; "
            f"{many[-1]['cores_busy']} cores busy | 1 process {_n(sharded['one_events_per_s'])} "
            f"ev/s | {sharded['speedup']}x (rounds {sharded['speedup_per_round']}) | >= 1.6x | "
            f"{_met(sharded['target']['met'])} |"
        )
        base = sharded.get("baseline")
        if base:  # `--baseline`: the same rounds with an older checkout's replay, interleaved
            ratio = base["this_over_baseline"]
            rows.append(
                f"| replay against the baseline checkout ({base['commit']}), interleaved | "
                f"1 process {_n(sharded['one_events_per_s'])}, {n} shards "
                f"{_n(sharded['many_events_per_s'])} ev/s | baseline "
                f"{_n(base['one_events_per_s'])} and {_n(base['many_events_per_s'])} ev/s | "
                f"{ratio['1']}x and {ratio[str(n)]}x | - | - |"
            )
    return rows


def memory_rows(r: dict[str, Any]) -> list[str]:
    rows = []
    for u in r["users"]:
        worker = (
            f"; a memory:// worker holding every record: RSS {_n(u['worker_rss_mib'])} MiB = "
            f"{_n(u['worker_rss_bytes_per_user'])} B/user over an idle worker's "
            f"{_n(r['idle_worker']['rss_mib'])} MiB"
            if u.get("worker_rss_mib")
            else ""
        )
        folded = u.get("folded_bytes_per_user")
        windows = f" ({_n(folded)} with windows)" if folded else ""
        days = r["parameters"].get("days", 1)
        met = "-"
        if days >= 30:
            met = _met(u["state_bytes_per_user"] <= 8_000)
        rows.append(
            f"| memory, {u['users']:,} users, {days} days | state {_n(u['state_bytes_per_user'])} "
            f"B/user, objects {_n(u['object_bytes_per_user'])} B/user{windows}{worker} | - | - "
            f"| state <= 8 KB/user at 30 days | {met} |"
        )
    return rows


def restart_rows(r: dict[str, Any]) -> list[str]:
    a, m = r["aurora"], r["memory"]
    users = r["parameters"]["users"]
    clean, killed = a["after_clean_stop"], a["after_sigkill"]
    met = clean["served_s"] <= 5 and killed["served_s"] <= 10 if users <= 100_000 else None
    return [
        f"| restart, {users:,} users' 30-day states ({_n(r['state_bytes_per_user'])} B/user) "
        f"| served {clean['served_s']} s after a clean stop, {killed['served_s']} s after SIGKILL; "
        f"RSS {_n(killed['rss_mib'])} MiB | memory:// {m['served_s']} s at {m['users']:,} users "
        f"({_n(m['records_per_s'])} records/s; {_n(r['memory_extrapolated_s'])} s at {users:,}) "
        f"| {_n(r['memory_extrapolated_s'] / max(0.01, killed['served_s']), 1)}x faster "
        f"| <= 5 s clean, <= 10 s SIGKILL at 100k | {'-' if met is None else _met(met)} |"
    ]


ROWS = {
    "ingest": ingest_rows,
    "freshness": freshness_rows,
    "online": online_rows,
    "access": access_rows,
    "replay": replay_rows,
    "memory": memory_rows,
    "restart": restart_rows,
}


def table(reports: dict[str, dict[str, Any]], title: str, chart: str) -> str:
    lines = [
        f"Latest run: {title}. Chart: [`{chart}`]({chart}).",
        "",
        "| benchmark | figure | baseline, same run | ratio | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for name, render in ROWS.items():
        if name in reports:
            lines.extend(render(reports[name]))
    return "\n".join(lines)


def update_readme(text: str, kind: str, path: Path = README) -> None:
    """Replace the `kind` run's table ("full" or "quick"): a quick run never hides a full one."""
    update_block(text, f"latest-{kind}", f"Latest {kind} run", path)


def update_block(text: str, name: str, heading: str, path: Path = README) -> None:
    """Replace the text between the README's markers `name`, or add it under `heading`."""
    begin, end = f"<!-- bench:{name}:begin -->", f"<!-- bench:{name}:end -->"
    readme = path.read_text()
    block = f"{begin}\n{text}\n{end}"
    if begin in readme:
        pattern = re.escape(begin) + ".*?" + re.escape(end)
        readme = re.sub(pattern, lambda _: block, readme, flags=re.S)
    else:
        readme = readme.rstrip("\n") + f"\n\n## {heading}\n\n{block}\n"
    path.write_text(readme)


def _mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MB" if n < 2**30 else f"{n / 2**30:,.1f} GB"


def growth_table(r: dict[str, Any], chart: str) -> str:
    """bench.bench_growth's result: ingest beside a long history and beside empty tables."""
    p, h, x, met = r["parameters"], r["history"], r["ratios"], r["targets"]["met"]
    rate, cpu, i, d = (
        r["steady_events_per_s"],
        r["postgres_us_per_event"],
        r["indexes"],
        r["drop_day"],
    )
    when = r.get("machine", {}).get("when", "")
    each = {c: [run["postgres_us_per_event"] for run in r["runs"][c]] for c in ("empty", "full")}
    rounds = {c: ", ".join(f"{v:g}" for v in each[c]) for c in each}
    means = {c: sum(each[c]) / len(each[c]) for c in each}
    return "\n".join(
        [
            f"`python -m bench.bench_growth --rows {p['history_rows_each']} --days "
            f"{p['history_days']} --events {p['events']} --rounds {p['rounds']}`, {when}: the "
            f"history held {h['archive_rows']:,} archived events and {h['snapshot_rows']:,} "
            f"snapshot rows over {p['history_days']} days; each case ingested {p['events']:,} "
            f"events of the last 3 days, best of {p['rounds']} alternating rounds; load average "
            f"{p['load_average_1m'][0]} to {p['load_average_1m'][1]} on 2 cores"
            f"{' (other work shared the machine)' if max(p['load_average_1m']) > 2 else ''}. "
            f"Chart: [`{chart}`]({chart}).",
            "",
            "| figure | empty tables | full history | ratio | target | met |",
            "|---|---|---|---|---|---|",
            f"| worker events/s, steady | {_n(rate['empty'])} | {_n(rate['full'])} | "
            f"{x['events_per_s']} | >= {r['targets']['rate_ratio_min']} | "
            f"{_met(met['events_per_s'])} |",
            f"| Postgres CPU per event, best round | {_n(cpu['empty'], 1)} us | "
            f"{_n(cpu['full'], 1)} us | {x['postgres_cpu_per_event']} | "
            f"<= {r['targets']['cpu_ratio_max']} | {_met(met['postgres_cpu_per_event'])} |",
            f"| Postgres CPU per event, each round | {rounds['empty']} us | {rounds['full']} us | "
            f"means {means['full'] / means['empty']:.3f} | - | - |",
            f"| indexes | - | {_mb(i['all_bytes'])} in all; the days written: "
            f"{_mb(i['written_bytes'])}, {_mb(i['written_cached_bytes'])} of it in shared "
            f"buffers ({_mb(i['shared_buffers_bytes'])}) | - | - | - |",
            f"| drop a day ({d['day']}, {d['rows']:,} rows in 6 tables) | - | {d['seconds']} s; "
            f"dead tuples {d['dead_tuples_before']:,} before, {d['dead_tuples_after']:,} after | "
            f"- | < {r['targets']['drop_s_max']:g} s, none left | {_met(met['drop_day'])} |",
        ]
    )
