"""Every catalog column comes from a schema field or a derived measure; the docs are current."""

from __future__ import annotations

from datetime import UTC, datetime

from stream.catalog import EVENT_TYPES, FEATURES
from stream.core.observe import observe
from stream.ops.catalog_docs import CATALOG_PAGE, payload_fields, render_catalog
from stream.synth.generator import GeneratorConfig, generate


def _measures() -> dict[str, set[str]]:
    """Every measure name derive.py produces, per event type, over a varied generated stream."""
    seen: dict[str, set[str]] = {t: {"event_timestamp"} for t in EVENT_TYPES}
    config = GeneratorConfig(users=20, days=10, seed=3, start=datetime(2026, 1, 1, tzinfo=UTC))
    for generated in generate(config):
        if generated.event is not None:
            obs = observe(generated.event)
            seen[obs.event_type] |= set(obs.numbers) | set(obs.categories)
            if obs.friend_delta:
                seen[obs.event_type].add("friend_delta")
    return seen


def test_every_column_is_a_schema_field_or_a_derived_measure() -> None:
    measures = _measures()
    for spec in FEATURES:
        if spec.column is None:
            continue
        for event_type in spec.events:
            known = payload_fields(event_type) | measures[event_type]
            assert spec.column in known, f"{spec.name}: {spec.column} is nowhere in {event_type}"


def test_the_catalog_page_renders_the_current_catalog() -> None:
    page = CATALOG_PAGE.read_text()
    assert page == render_catalog(), "run `python -m stream docs` and commit docs/catalog.md"
