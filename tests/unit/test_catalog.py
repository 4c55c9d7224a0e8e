"""The derivation catalog covers the seed contract exactly, once per feature."""

from __future__ import annotations

from collections import Counter

from stream.catalog import FEATURES, VIEWS, Aggregate, Window, features_of
from tests import contract


def test_every_contract_feature_appears_exactly_once_in_its_view() -> None:
    counts = Counter(f.name for f in FEATURES)
    assert [name for name, n in counts.items() if n > 1] == []
    for view_name, (_, names) in contract.VIEWS.items():
        assert [f.name for f in features_of(view_name)] == names


def test_views_and_ttls_match_the_contract() -> None:
    assert {v.name: v.ttl for v in VIEWS} == {n: ttl for n, (ttl, _) in contract.VIEWS.items()}
    assert {v.name for v in VIEWS} == {f.view for f in FEATURES}


def test_activity_push_source_has_the_catalog_name() -> None:
    assert {v.name: v.push_source for v in VIEWS}["user_activity_features"] == "user_activity_push"


def test_windows_agree_with_feature_names() -> None:
    suffixes = {"_24h": Window.H24, "_7d": Window.D7, "_30d": Window.D30}
    for spec in FEATURES:
        for suffix, window in suffixes.items():
            if spec.name.endswith(suffix):
                assert spec.window is window, spec.name


def test_every_feature_is_defined_and_typed() -> None:
    for spec in FEATURES:
        assert len(spec.definition) > 20, spec.name
        assert spec.events, spec.name
        assert spec.dtype in ("int64", "float64", "string")
        if spec.aggregate is Aggregate.COUNT or spec.aggregate is Aggregate.DISTINCT:
            assert spec.dtype == "int64", spec.name
        if spec.aggregate in (Aggregate.MEAN, Aggregate.SCORE, Aggregate.RATIO):
            assert spec.dtype == "float64", spec.name
