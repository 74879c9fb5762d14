"""The numpy boosted trees: fit a known function, deterministic for a generator, continuous features."""
from __future__ import annotations

import numpy as np

from raynas.strategies.boosting import BoostedTrees


def data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.integers(0, 2, n), rng.integers(0, 2, n), rng.random(n)])
    return x, 2.0 * x[:, 0] - x[:, 1] + (x[:, 2] > 0.5)


def test_learns_an_additive_function_with_a_continuous_threshold():
    x, y = data()
    model = BoostedTrees(n_estimators=100, learning_rate=0.3).fit(x, y, np.random.default_rng(0))
    xt, yt = data(seed=1)
    assert np.abs(model.predict(xt) - yt).mean() < 0.1
    assert np.corrcoef(model.predict(xt), yt)[0, 1] > 0.99


def test_deterministic_for_a_generator_and_varies_with_it():
    x, y = data()
    a, b, c = (BoostedTrees().fit(x, y, np.random.default_rng(s)).predict(x) for s in (1, 1, 2))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_constant_target_and_tiny_data():
    x, _ = data(n=3)
    model = BoostedTrees().fit(x, np.ones(3), np.random.default_rng(0))
    assert np.allclose(model.predict(x), 1.0)


def test_non_finite_feature_values_are_below_every_threshold():
    x, y = data()
    x[:10, 2] = -np.inf
    model = BoostedTrees().fit(x, y, np.random.default_rng(0))
    assert np.isfinite(model.predict(x)).all() and np.isfinite(model.thresholds[2]).all()
