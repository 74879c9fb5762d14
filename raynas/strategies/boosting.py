"""Gradient-boosted regression trees in numpy: the ensemble members of ``bananas``.

Least-squares boosting (Friedman) of depth-``max_depth`` trees with stochastic row subsampling. Each
feature column is binarised once, at up to ``bins`` quantile thresholds (a one-hot encoding keeps one
column per feature), so a node's best split over every threshold is one matrix product: a 50-tree
fit on 100 rows takes a few milliseconds, where scikit-learn's ``GradientBoostingRegressor`` spends
~20 ms in per-tree overhead (measured; docs/BENCHMARKS.md). Deterministic given the ``rng`` passed in.
"""
from __future__ import annotations

import dataclasses

import numpy as np

NO_SPLIT = -1  # a node whose samples all go left (no split gains anything)


@dataclasses.dataclass
class Tree:
    """A complete binary tree: ``features[k]`` (index into the binarised columns, or ``NO_SPLIT``) of
    internal node ``k`` in level order, and the ``2**depth`` leaf values."""

    features: np.ndarray
    leaves: np.ndarray

    def leaf_of(self, b: np.ndarray) -> np.ndarray:
        """The leaf index of each row of the binarised matrix ``b``."""
        node = np.zeros(len(b), dtype=np.int64)
        depth = int(np.log2(len(self.leaves)))
        for level in range(depth):
            feat = self.features[(2 ** level - 1) + node]
            bit = np.where(feat >= 0, b[np.arange(len(b)), np.maximum(feat, 0)], 0.0)
            node = 2 * node + (bit > 0)
        return node


@dataclasses.dataclass
class BoostedTrees:
    """A boosted-tree regressor (``fit(x, y, rng)``, ``predict(x)``)."""

    n_estimators: int = 50
    max_depth: int = 3
    learning_rate: float = 0.1
    subsample: float = 0.8
    bins: int = 16
    min_leaf: int = 1
    thresholds: list[np.ndarray] = dataclasses.field(default_factory=list)
    trees: list[Tree] = dataclasses.field(default_factory=list)
    base: float = 0.0

    def fit(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> "BoostedTrees":
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        qs = np.linspace(0.0, 1.0, self.bins + 2)[1:-1]
        self.thresholds = [self._cuts(col, qs) for col in x.T]
        b = self.binarise(x)
        self.base, pred, self.trees = float(y.mean()), np.full(len(y), float(y.mean())), []
        for _ in range(self.n_estimators):
            rows = np.flatnonzero(rng.random(len(y)) < self.subsample)
            if len(rows) < 2:
                rows = np.arange(len(y))
            tree = self._grow(b[rows], y[rows] - pred[rows])
            pred += self.learning_rate * tree.leaves[tree.leaf_of(b)]
            self.trees.append(tree)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        b = self.binarise(np.asarray(x, dtype=np.float64))
        return self.base + self.learning_rate * sum((t.leaves[t.leaf_of(b)] for t in self.trees), np.zeros(len(b)))

    @staticmethod
    def _cuts(col: np.ndarray, qs: np.ndarray) -> np.ndarray:
        """Distinct quantile thresholds of the finite values below their maximum (a non-finite value,
        e.g. a proxy's -inf, is never above a threshold)."""
        finite = col[np.isfinite(col)]
        if not len(finite):
            return finite
        cuts = np.unique(np.quantile(finite, qs))
        return cuts[cuts < finite.max()]

    def binarise(self, x: np.ndarray) -> np.ndarray:
        """One indicator column ``x[:, f] > t`` per feature ``f`` and threshold ``t``."""
        cols = [(x[:, [f]] > t).astype(np.float64) for f, t in enumerate(self.thresholds) if len(t)]
        return np.hstack(cols) if cols else np.zeros((len(x), 1))

    def _grow(self, b: np.ndarray, r: np.ndarray) -> Tree:
        """Greedy least-squares splits level by level (all nodes of a level in one product); leaves
        hold their rows' mean residual."""
        features = np.full(2 ** self.max_depth - 1, NO_SPLIT, dtype=np.int64)
        node = np.zeros(len(r), dtype=np.int64)
        rows = np.arange(len(r))
        for level in range(self.max_depth):
            offset, width = 2 ** level - 1, 2 ** level
            member = np.zeros((width, len(r)))
            member[node, rows] = 1.0
            features[offset:offset + width] = self._best_splits(member @ b, (member * r) @ b, member.sum(1),
                                                                member @ r)
            feat = features[offset + node]
            bit = np.where(feat >= 0, b[rows, np.maximum(feat, 0)], 0.0)
            node = 2 * node + (bit > 0)
        sums = np.bincount(node, weights=r, minlength=2 ** self.max_depth)
        counts = np.bincount(node, minlength=2 ** self.max_depth)
        return Tree(features, np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0))

    def _best_splits(self, n1: np.ndarray, s1: np.ndarray, n: np.ndarray, s: np.ndarray) -> np.ndarray:
        """Per node (rows of the count ``n1`` and residual-sum ``s1`` matrices, by column): the column
        whose split most reduces the squared error, or ``NO_SPLIT``."""
        n0, s0 = n[:, None] - n1, s[:, None] - s1
        ok = (n1 >= self.min_leaf) & (n0 >= self.min_leaf)
        with np.errstate(divide="ignore", invalid="ignore"):
            gain = np.where(ok, s1 ** 2 / n1 + s0 ** 2 / n0, -np.inf)
            parent = np.where(n > 0, s ** 2 / n, 0.0)
        best = np.argmax(gain, axis=1)
        top = gain[np.arange(len(best)), best]
        return np.where(np.isfinite(top) & (top > parent + 1e-12), best, NO_SPLIT)
