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


def test_edge_gradients_on_a_real_nb201_supernet():
    """On a real supernet: one row per allowed op, the edge's own parameters excluded, gradients left
    cleared; the distances feed the cut."""
    import torch

    from raynas.data import load_dataset
    from raynas.space.nb201 import EDGES, OPS, NB201Space
    from raynas.space.splits import SubSpace
    from raynas.supernet.nb201 import NB201Supernet
    from raynas.supernet.splitting import edge_gradients

    torch.manual_seed(0)
    space = NB201Space()
    net = NB201Supernet(space, NB201Supernet.Config(channels=4, num_classes=10))
    data = load_dataset("digits")
    batches = [b for _, b in zip(range(3), data.loader("train", 32, shuffle=True))]
    sub = SubSpace(len(EDGES), len(OPS)).restrict(3, [1, 2, 3])  # edge 3 (3<-0) keeps skip, 1x1, 3x3
    ops, mats = edge_gradients(net, sub, 5, batches, np.random.default_rng(0))
    own = sum(p.numel() for n, p in net.named_parameters() if n in net.edge_parameter_names(5))
    assert ops == list(range(len(OPS))) and len(mats) == 3 and own > 0
    assert all(m.shape == (5, sum(p.numel() for p in net.parameters()) - own) for m in mats)
    assert all(np.abs(m).sum() > 0 for m in mats) and all(p.grad is None for p in net.parameters())
    cut = best_partition(gradient_distances(mats))
    assert sorted(cut.groups[0] + cut.groups[1]) == ops and cut.within <= cut.total
