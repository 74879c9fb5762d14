"""Ridge regression in numpy: the other ensemble member of ``bananas`` (``predictor: ridge``).

Least squares with an L2 penalty ``alpha`` on the weights and an unpenalised intercept, solved in
closed form (a ``d × d`` system: microseconds for a 30-feature one-hot encoding). With
``interactions`` the features are extended by every pairwise product ``x_i · x_j`` (``i < j``): on a
one-hot encoding, one indicator per pair of choices (e.g. the ops of two NB201 edges together).
On NB201 a linear model of the one-hot encoding ranks the good archs better than the boosted trees at
~50–90 results (docs/BENCHMARKS.md). The penalty applies to the features as given (a one-hot
encoding's 0/1; a zero-cost proxy column on its own scale); a non-finite value (a proxy's ``-inf``)
is replaced by its column's smallest finite value at fit time. The fit is deterministic; ``rng`` is
accepted for the members' common interface and unused.
"""
from __future__ import annotations

import dataclasses

import numpy as np


def pairwise(x: np.ndarray) -> np.ndarray:
    """``x`` with every product of two different columns appended (``i < j``, row-major order)."""
    i, j = np.triu_indices(x.shape[1], 1)
    return np.hstack([x, x[:, i] * x[:, j]])


@dataclasses.dataclass
class Ridge:
    """A ridge regressor (``fit(x, y, rng)``, ``predict(x)``)."""

    alpha: float = 1.0
    interactions: bool = False
    weights: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    floor: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    intercept: float = 0.0

    def fit(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator | None = None) -> "Ridge":
        x = np.asarray(x, dtype=np.float64)
        lowest = np.where(np.isfinite(x), x, np.inf).min(axis=0)
        self.floor = np.where(np.isfinite(lowest), lowest, 0.0)
        f, y = self._features(x), np.asarray(y, dtype=np.float64)
        mean_f, mean_y = f.mean(axis=0), float(y.mean())
        fc = f - mean_f  # centring leaves the intercept out of the penalty
        gram = fc.T @ fc + self.alpha * np.eye(f.shape[1])
        self.weights = np.linalg.solve(gram, fc.T @ (y - mean_y))
        self.intercept = mean_y - float(mean_f @ self.weights)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self._features(x) @ self.weights + self.intercept

    def _features(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        x = np.where(np.isfinite(x), x, self.floor)
        return pairwise(x) if self.interactions else x
