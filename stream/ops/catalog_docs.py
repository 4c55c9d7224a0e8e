"""Render the feature catalog into schemas/README.md, so the people's copy is the code's copy."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from stream.catalog import FEATURES, TILE, VIEWS, FeatureSpec

MARKER: Final = "<!-- catalog table: rendered by python -m stream docs -->"
END: Final = "<!-- end of catalog table -->"


def payload_fields(event_type: str) -> set[str]:
    """The payload properties the event type's JSON Schema declares."""
    from stream.core.events import load_schema

    schema = load_schema(f"{event_type}.v1")
    return set(schema["properties"]["payload"]["properties"])


def _source(spec: FeatureSpec) -> str:
    if not spec.column:
        return ""
    declared = set().union(*(payload_fields(t) for t in spec.events))
    column = f"`{spec.column}`" if spec.column in declared else f"*`{spec.column}`*"
    if spec.value:
        column += f" = `{spec.value}`"
    return column


def render_catalog() -> str:
    lines = [
        MARKER,
        "",
        f"Tiles are {int(TILE.total_seconds() // 3600)} hour wide; the window rules, the row time",
        "and the null rules are in the docstring of `stream/catalog.py`. Columns in *italics* are",
        "derived from the payload by `stream/core/observe.py`; the others are payload fields.",
        "",
    ]
    for view in VIEWS:
        lines += [
            f"### {view.name}",
            "",
            f"{view.description} TTL {view.ttl}; push source `{view.push_source}`; events: "
            f"{', '.join(view.events)}.",
            "",
            "| feature | type | window | aggregate | column | definition |",
            "|---|---|---|---|---|---|",
        ]
        for spec in (f for f in FEATURES if f.view == view.name):
            unit = f" [{spec.unit}]" if spec.unit else ""
            lines.append(
                f"| `{spec.name}` | {spec.dtype} | {spec.window.value} | {spec.aggregate.value} "
                f"| {_source(spec)} | {spec.definition}{unit} |"
            )
        lines.append("")
    lines.append(END)
    return "\n".join(lines)


def splice(document: str) -> str:
    """The document with the catalog section replaced by a fresh rendering."""
    start = document.index(MARKER)
    end = document.find(END, start)
    tail = document[end + len(END) :] if end != -1 else "\n"
    return document[:start] + render_catalog() + tail


def write_docs(readme: Path) -> bool:
    """Rewrite the catalog section of `readme`; True when it changed."""
    before = readme.read_text()
    after = splice(before)
    if after != before:
        readme.write_text(after)
    return after != before
