"""Pareto utilities against brute force."""
from __future__ import annotations

import numpy as np

from raynas.strategies.pareto import crowding_distance, dominates, hypervolume_2d, nondominated_fronts


def brute_front(points):
    return sorted(i for i, p in enumerate(points) if not any(dominates(q, p) for q in points))


def test_first_front_is_the_non_dominated_set_and_fronts_partition():
    rng = np.random.default_rng(0)
    for _ in range(20):
        pts = rng.integers(0, 6, size=(30, 2)).astype(float)
        fronts = nondominated_fronts(pts)
        assert sorted(fronts[0]) == brute_front(pts)
        assert sorted(i for f in fronts for i in f) == list(range(30))
        for earlier, later in zip(fronts, fronts[1:]):
            assert all(any(dominates(pts[i], pts[j]) for i in earlier) for j in later)


def test_crowding_gives_boundaries_infinity():
    pts = np.array([[0.0, 3.0], [1.0, 2.0], [2.0, 1.0], [3.0, 0.0]])
    d = crowding_distance(pts)
    assert np.isinf(d[0]) and np.isinf(d[3]) and np.allclose(d[1:3], [2.0 / 3 * 2, 2.0 / 3 * 2])


def test_hypervolume_matches_monte_carlo():
    rng = np.random.default_rng(1)
    pts = rng.random((15, 2))
    ref = np.array([0.0, 0.0])
    hv = hypervolume_2d(pts, ref)
    samples = rng.random((200_000, 2))
    covered = (samples[:, None, :] <= pts[None, :, :]).all(axis=2).any(axis=1).mean()
    assert abs(hv - covered) < 0.01
    assert hypervolume_2d(np.array([[1.0, 1.0]]), ref) == 1.0
