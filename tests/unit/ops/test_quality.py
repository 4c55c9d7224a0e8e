"""The quality report's math, on hand-made series whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from stream.catalog import FEATURES, FeatureSpec
from stream.ops.quality import (
    bounds_of,
    categorical_psi,
    missing_rate,
    numeric_psi,
    out_of_range,
    outliers,
    psi,
)


def spec(name: str) -> FeatureSpec:
    return next(f for f in FEATURES if f.name == name)


def test_psi_is_zero_for_equal_shares_and_matches_the_formula() -> None:
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    expected = (0.8 - 0.5) * math.log(0.8 / 0.5) + (0.2 - 0.5) * math.log(0.2 / 0.5)
    assert psi([0.5, 0.5], [0.8, 0.2]) == pytest.approx(expected)


def test_numeric_psi_sees_a_shift_and_not_a_resample() -> None:
    rng = np.random.default_rng(3)
    before = pd.Series(rng.normal(10, 2, 5_000))
    same = pd.Series(rng.normal(10, 2, 5_000))
    shifted = pd.Series(rng.normal(14, 2, 5_000))
    assert (numeric_psi(before, same) or 0.0) < 0.02
    assert (numeric_psi(before, shifted) or 0.0) > 0.25
    assert numeric_psi(pd.Series([], dtype=float), same) is None


def test_categorical_psi_counts_new_categories() -> None:
    before = pd.Series(["walking"] * 50 + ["work"] * 50)
    assert categorical_psi(before, before) == 0.0
    assert (categorical_psi(before, pd.Series(["gaming"] * 100)) or 0.0) > 0.25


def test_missing_range_and_outliers() -> None:
    values = pd.Series([1.0, None, 3.0, 42.0, None, 2.0, 2.5, 1.5, 2.0, 2.2])
    assert missing_rate(values) == 0.2
    assert out_of_range(values, (1.0, 10.0)) == 1
    assert out_of_range(values, None) == 0
    assert outliers(values) == 1  # 42 is far beyond the quartiles; nothing else is


def test_bounds_follow_the_catalog_and_the_schemas() -> None:
    assert bounds_of(spec("activity_count_7d")) == (0.0, math.inf)
    assert bounds_of(spec("avg_energy_7d")) == (1.0, 10.0)
    assert bounds_of(spec("most_common_activity_24h")) is None
