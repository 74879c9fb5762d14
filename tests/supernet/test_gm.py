"""Gradient-matching arithmetic (GM-NAS): on gradients built with a known best cut, the partition finds
that cut, and the edge with the clearest disagreement is the one split (issue 12, item 9)."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from raynas.supernet.gm import best_partition, choose_split, cosine_distances, gradient_distances


def clustered(groups, dim=64, spread=0.05, seed=0, batches=4, apart=1.0):
    """Per-batch gradients (ops × dim): ops of one group share a direction, plus a little noise; the
    groups' directions differ by ``apart`` (1: independent directions)."""
    rng = np.random.default_rng(seed)
    n = sum(len(g) for g in groups)
    common = rng.normal(size=dim)
    centres = {i: common + apart * rng.normal(size=dim) for i in range(len(groups))}
    out = []
    for _ in range(batches):
        g = np.zeros((n, dim))
        for k, group in enumerate(groups):
            for op in group:
                g[op] = centres[k] + spread * rng.normal(size=dim)
        out.append(g)
    return out


def test_cosine_distance_basics():
    d = cosine_distances(np.array([[1.0, 0], [2.0, 0], [0, 1.0], [-1.0, 0], [0, 0]]))
    assert d[0, 1] == pytest.approx(0) and d[0, 2] == pytest.approx(1) and d[0, 3] == pytest.approx(2)
    assert d[4, 0] == pytest.approx(1) and np.allclose(d, d.T)


@pytest.mark.parametrize("small", list(itertools.combinations(range(5), 2)))
def test_the_partition_finds_the_planted_cut(small):
    rest = tuple(o for o in range(5) if o not in small)
    cut = best_partition(gradient_distances(clustered([small, rest], apart=3.0)))
    assert cut.groups == (small, rest) and cut.within < 0.05 and cut.score > 4


def test_within_distance_is_the_minimum_over_every_2_3_cut():
    rng = np.random.default_rng(3)
    dist = gradient_distances([rng.normal(size=(5, 16)) for _ in range(3)])
    cut = best_partition(dist)
    options = []
    for small in itertools.combinations(range(5), 2):
        rest = [o for o in range(5) if o not in small]
        options.append(dist[small[0], small[1]] + sum(dist[a, b] for a, b in itertools.combinations(rest, 2)))
    assert cut.within == pytest.approx(min(options)) and cut.total == pytest.approx(np.triu(dist, 1).sum())


def test_the_edge_with_the_clearest_disagreement_is_split():
    agree = gradient_distances(clustered([range(5)], seed=1))  # all ops pull the same way: nothing to gain
    split = gradient_distances(clustered([(1, 3), (0, 2, 4)], seed=2, apart=3.0))
    mild = gradient_distances(clustered([(0, 1), (2, 3, 4)], seed=4, apart=0.3))  # groups, but close
    edge, cut = choose_split({0: agree, 2: split, 5: mild})
    assert edge == 2 and cut.groups == ((1, 3), (0, 2, 4))
    with pytest.raises(ValueError, match="no edge"):
        choose_split({})
