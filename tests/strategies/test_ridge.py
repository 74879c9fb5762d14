"""The numpy ridge members of ``bananas``: exact least squares as the penalty vanishes, shrinkage,
pairwise interactions, an unpenalised intercept, non-finite features."""
from __future__ import annotations

import numpy as np

from raynas.strategies.ridge import Ridge, pairwise


def data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, size=(n, 4)).astype(float)
    return x, x @ np.array([1.0, -2.0, 3.0, 0.5]) + 70.0


def test_recovers_a_linear_function_and_its_intercept_as_the_penalty_vanishes():
    x, y = data()
    model = Ridge(alpha=1e-9).fit(x, y)
    assert np.allclose(model.weights, [1.0, -2.0, 3.0, 0.5], atol=1e-6)
    assert abs(model.intercept - 70.0) < 1e-6  # the intercept is not shrunk towards 0
    xt, yt = data(seed=1)
    assert np.allclose(model.predict(xt), yt, atol=1e-6)


def test_the_penalty_shrinks_the_weights_not_the_mean():
    x, y = data()
    small, large = Ridge(alpha=0.1).fit(x, y), Ridge(alpha=100.0).fit(x, y)
    assert np.linalg.norm(large.weights) < 0.5 * np.linalg.norm(small.weights)
    assert abs(large.predict(x).mean() - y.mean()) < 1e-9


def test_interactions_fit_a_product_that_a_linear_model_cannot():
    x, _ = data()
    y = x[:, 0] * x[:, 1]  # the ops of two edges matter only together
    linear, pairs = Ridge(alpha=1e-6).fit(x, y), Ridge(alpha=1e-6, interactions=True).fit(x, y)
    assert np.abs(pairs.predict(x) - y).max() < 1e-4 < np.abs(linear.predict(x) - y).max()
    assert pairwise(x).shape == (len(x), 4 + 6) and np.array_equal(pairwise(x)[:, 4], x[:, 0] * x[:, 1])


def test_a_non_finite_feature_takes_its_columns_smallest_finite_value():
    x, y = data()
    x[:, 3] = np.arange(len(x), dtype=float)  # 1.0 is the smallest finite value once row 0 is -inf
    x[0, 3] = -np.inf
    model = Ridge().fit(x, y)
    assert np.isfinite(model.predict(x)).all()
    floored = x[:1].copy()
    floored[0, 3] = 1.0
    assert model.predict(x[:1])[0] == model.predict(floored)[0]
