"""Multi-objective helpers on points where every objective is to be **maximised** (negate minimised ones).

``nondominated_fronts`` is the fast non-dominated sort of NSGA-II (Deb et al., 2002),
``crowding_distance`` its diversity measure, ``hypervolume_2d`` the area dominated by a 2-D front
above a reference point (the standard quality indicator of a Pareto front).
"""
from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np

from raynas.metrics import MAX


@dataclasses.dataclass
class Objective:
    """One objective of a multi-objective search: a visible metric and its direction."""

    metric: str
    mode: Literal["max", "min"] = "max"

    def sign(self) -> float:
        return 1.0 if self.mode == MAX else -1.0


def as_maximised(metrics: list[dict[str, float]], objectives: list[Objective]) -> np.ndarray:
    """An (n, k) array of objective values, sign-flipped so that larger is better for all."""
    return np.array([[o.sign() * m[o.metric] for o in objectives] for m in metrics], dtype=float)


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all(a >= b) and np.any(a > b))


def nondominated_fronts(points: np.ndarray) -> list[list[int]]:
    """Indices of ``points`` grouped into fronts F1, F2, … (F1 = the Pareto front)."""
    n = len(points)
    better = points[:, None, :] >= points[None, :, :]
    strictly = points[:, None, :] > points[None, :, :]
    dom = better.all(axis=2) & strictly.any(axis=2)  # dom[i, j]: i dominates j
    count = dom.sum(axis=0)  # how many dominate j
    fronts, current = [], [j for j in range(n) if count[j] == 0]
    while current:
        fronts.append(current)
        nxt = []
        for i in current:
            for j in np.flatnonzero(dom[i]):
                count[j] -= 1
                if count[j] == 0:
                    nxt.append(int(j))
        current = sorted(nxt)
    return fronts


def crowding_distance(points: np.ndarray) -> np.ndarray:
    """Crowding distance of each point within one front (boundary points get infinity)."""
    n, k = points.shape
    dist = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for m in range(k):
        order = np.argsort(points[:, m], kind="stable")
        span = points[order[-1], m] - points[order[0], m]
        dist[order[0]] = dist[order[-1]] = np.inf
        if span > 0:
            dist[order[1:-1]] += (points[order[2:], m] - points[order[:-2], m]) / span
    return dist


def pareto_front(points: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated points."""
    return np.array(nondominated_fronts(points)[0] if len(points) else [], dtype=int)


def hypervolume_2d(points: np.ndarray, reference: np.ndarray) -> float:
    """Area dominated by ``points`` (maximised, shape (n, 2)) and bounded below by ``reference``."""
    pts = points[np.all(points > reference, axis=1)]
    if not len(pts):
        return 0.0
    pts = pts[pareto_front(pts)]
    pts = pts[np.argsort(-pts[:, 0])]  # x descending → y ascending along the front
    area, prev_y = 0.0, reference[1]
    for x, y in pts:
        if y > prev_y:
            area += (x - reference[0]) * (y - prev_y)
            prev_y = y
    return float(area)
