"""`python -m stream quality --days 7`: a data quality report of the offline snapshots, as HTML.

Per feature, over this period ([now - days, now)) against the one before it:

- missing: the share of this period's rows where the feature is null;
- out of range: values outside what the catalog's definition allows (counts and distinct counts
  at least 0; a ratio in [0, 1]; a mean or latest value within the schema's bounds for its
  event field; a standard deviation at least 0);
- outliers: values beyond the quartiles by 3 interquartile ranges (Tukey's far fences);
- drift: the population stability index (PSI) of this period against the previous one, over
  ten quantile bins of the previous period (categories for text features). Below 0.1 is stable,
  0.1 to 0.25 a moderate shift, above 0.25 a major one.

The math is in pure functions below; reading Postgres and writing HTML are at the edges.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from stream.catalog import EVENT_TYPES, VIEWS, Aggregate, FeatureSpec, features_of
from stream.core.events import load_schema
from stream.settings import Settings

PSI_MODERATE, PSI_MAJOR = 0.1, 0.25
_EPS = 1e-4  # an empty bin's share: PSI's log would otherwise be infinite


# --- the math --------------------------------------------------------------------------------


def missing_rate(values: pd.Series) -> float:
    return float(values.isna().mean()) if len(values) else 0.0


def out_of_range(values: pd.Series, bounds: tuple[float, float] | None) -> int:
    if bounds is None:
        return 0
    present = values.dropna().astype(float)
    return int(((present < bounds[0]) | (present > bounds[1])).sum())


def outliers(values: pd.Series) -> int:
    present = values.dropna().astype(float)
    if len(present) < 4:
        return 0
    q1, q3 = np.percentile(present, [25, 75])
    spread = 3 * (q3 - q1)
    return int(((present < q1 - spread) | (present > q3 + spread)).sum())


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Population stability index of two distributions given as shares over the same bins."""
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e, a = max(e, _EPS), max(a, _EPS)
        total += (a - e) * math.log(a / e)
    return total


def numeric_psi(before: pd.Series, now: pd.Series, bins: int = 10) -> float | None:
    before, now = before.dropna().astype(float), now.dropna().astype(float)
    if before.empty or now.empty:
        return None
    edges = np.unique(np.percentile(before, np.linspace(0, 100, bins + 1)))
    if len(edges) < 2:
        # One value last period: the share of this period that still has it.
        same = float((now == edges[0]).mean())
        return psi([1.0, 0.0], [same, 1 - same])
    edges[0], edges[-1] = -np.inf, np.inf
    expected = np.histogram(before, edges)[0] / len(before)
    actual = np.histogram(now, edges)[0] / len(now)
    return psi(list(expected), list(actual))


def categorical_psi(before: pd.Series, now: pd.Series) -> float | None:
    before, now = before.dropna(), now.dropna()
    if before.empty or now.empty:
        return None
    categories = sorted(set(before) | set(now))
    expected = before.value_counts(normalize=True).reindex(categories, fill_value=0.0)
    actual = now.value_counts(normalize=True).reindex(categories, fill_value=0.0)
    return psi(list(expected), list(actual))


def bounds_of(spec: FeatureSpec) -> tuple[float, float] | None:
    """What the feature's definition allows, from its aggregate and its event field's schema."""
    if spec.dtype == "string":
        return None
    if spec.aggregate in (Aggregate.COUNT, Aggregate.DISTINCT, Aggregate.STD):
        return (0.0, math.inf)
    if spec.aggregate is Aggregate.RATIO:
        return (0.0, 1.0)
    if spec.column is None or spec.aggregate not in (Aggregate.MEAN, Aggregate.LATEST):
        return None
    for event_type in spec.events:
        if event_type not in EVENT_TYPES:
            continue
        field = load_schema(f"{event_type}.v1")["properties"]["payload"]["properties"].get(
            spec.column, {}
        )
        if "minimum" in field or "maximum" in field:
            return (float(field.get("minimum", -math.inf)), float(field.get("maximum", math.inf)))
    return None


@dataclass(frozen=True)
class FeatureQuality:
    view: str
    feature: str
    rows: int
    missing: float
    out_of_range: int
    outliers: int
    drift: float | None
    chart: str  # a PNG, base64, of both periods' distributions; "" without data


def assess(spec: FeatureSpec, before: pd.Series, now: pd.Series) -> FeatureQuality:
    text = spec.dtype == "string"
    drift = categorical_psi(before, now) if text else numeric_psi(before, now)
    return FeatureQuality(
        view=spec.view,
        feature=spec.name,
        rows=len(now),
        missing=missing_rate(now),
        out_of_range=out_of_range(now, bounds_of(spec)),
        outliers=0 if text else outliers(now),
        drift=drift,
        chart=_chart(spec.name, before, now, text),
    )


# --- the edges -------------------------------------------------------------------------------


def read_periods(
    settings: Settings, days: int, now: datetime
) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """Per view: (the previous period's rows, this period's rows)."""
    import psycopg
    from psycopg import sql

    start, middle = now - timedelta(days=2 * days), now - timedelta(days=days)
    periods = {}
    with psycopg.connect(
        settings.postgres_conninfo(), options=f"-c search_path={settings.postgres_schema}"
    ) as conn:
        for view in VIEWS:
            names = [f.name for f in features_of(view.name)]
            query = sql.SQL(
                "SELECT event_timestamp, {} FROM {} WHERE event_timestamp >= %s "
                "AND event_timestamp < %s"
            ).format(sql.SQL(", ").join(map(sql.Identifier, names)), sql.Identifier(view.table))
            with conn.cursor() as cur:
                cur.execute(query, (start, now))
                rows = cur.fetchall()
            frame = pd.DataFrame(rows, columns=["event_timestamp", *names])
            recent = frame["event_timestamp"] >= middle
            periods[view.name] = (frame[~recent], frame[recent])
    return periods


def report(settings: Settings, days: int, now: datetime | None = None) -> list[FeatureQuality]:
    now = now or datetime.now(UTC)
    periods = read_periods(settings, days, now)
    results = []
    for view in VIEWS:
        before, current = periods[view.name]
        for spec in features_of(view.name):
            results.append(assess(spec, before[spec.name], current[spec.name]))
    return results


def _chart(name: str, before: pd.Series, now: pd.Series, text: bool) -> str:
    if before.dropna().empty and now.dropna().empty:
        return ""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3.2, 1.6))
    if text:
        categories = sorted(set(before.dropna()) | set(now.dropna()))[:12]
        shares = [before.value_counts(normalize=True), now.value_counts(normalize=True)]
        width = 0.4
        for i, (share, label) in enumerate(zip(shares, ["previous", "this"], strict=True)):
            ax.bar(
                [j + i * width for j in range(len(categories))],
                [float(share.get(c, 0.0)) for c in categories],
                width,
                label=label,
            )
        ax.set_xticks(range(len(categories)), categories, rotation=45, fontsize=5, ha="right")
    else:
        values = [before.dropna().astype(float), now.dropna().astype(float)]
        ax.hist(values, bins=20, density=True, label=["previous", "this"], alpha=0.8)
    ax.set_title(name, fontsize=7)
    ax.tick_params(labelsize=5)
    ax.legend(fontsize=5)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _drift_class(value: float | None) -> str:
    if value is None:
        return "none"
    return "major" if value > PSI_MAJOR else "moderate" if value > PSI_MODERATE else "stable"


def render(results: list[FeatureQuality], days: int, now: datetime) -> str:
    rows = []
    for r in results:
        chart = f'<img alt="{html.escape(r.feature)}" src="data:image/png;base64,{r.chart}">'
        drift = "-" if r.drift is None else f"{r.drift:.3f}"
        rows.append(
            f'<tr class="{_drift_class(r.drift)}"><td>{html.escape(r.view)}</td>'
            f"<td>{html.escape(r.feature)}</td><td>{r.rows:,}</td><td>{r.missing:.1%}</td>"
            f"<td>{r.out_of_range:,}</td><td>{r.outliers:,}</td><td>{drift}</td>"
            f"<td>{chart if r.chart else 'no data'}</td></tr>"
        )
    major = sum(1 for r in results if r.drift is not None and r.drift > PSI_MAJOR)
    bad = sum(1 for r in results if r.out_of_range)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Aurora feature quality</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; font-size: 13px; }}
tr.major td {{ background: #f8d7da; }} tr.moderate td {{ background: #fff3cd; }}
</style>
<script>
// How many charts the browser could draw: a check for people and headless tests alike.
window.addEventListener("load", () => {{
  document.body.dataset.chartsDrawn =
    [...document.images].filter((i) => i.complete && i.naturalWidth > 0).length;
}});
</script></head><body>
<h1>Aurora feature quality</h1>
<p id="summary">{len(results)} features, the last {days} days to {now:%Y-%m-%d %H:%M} UTC against
the {days} days before. Major drift (PSI &gt; {PSI_MAJOR}): {major}. Features with values out of
range: {bad}.</p>
<table id="features"><thead><tr><th>view</th><th>feature</th><th>rows</th><th>missing</th>
<th>out of range</th><th>outliers</th><th>drift (PSI)</th><th>distribution</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table></body></html>
"""


def main(settings: Settings, days: int, out: Path) -> int:
    now = datetime.now(UTC)
    results = report(settings, days, now)
    out.write_text(render(results, days, now))
    drifted = [r.feature for r in results if r.drift is not None and r.drift > PSI_MAJOR]
    print(f"wrote {out}: {len(results)} features; major drift: {', '.join(drifted) or 'none'}")
    return 0
