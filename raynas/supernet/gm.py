"""Gradient matching (GM-NAS, Hu et al., 2022): which edge to split, and how to group its ops.

For an unsplit edge, each op ``o`` is fixed on it in turn and a training batch gives the gradient
``g_o`` of the *shared* parameters (every parameter but the edge's own). Ops whose gradients point the
same way agree on how the shared weights should move, and can keep sharing them; ops that disagree
should get weights of their own. So, as in the paper's official code:

* distance of two ops = 1 − cosine(g_a, g_b) of the flattened gradients, averaged over B batches
  (``gradient_distances``);
* an edge's ops are cut into two groups of balanced sizes (5 ops: every {2}|{3} partition), keeping
  the cut with the least within-group distance (``best_partition``);
* the edge's score is the total distance minus that within-group distance — the disagreement the
  cut removes; the edge with the highest score is split (``choose_split``).
This module is the arithmetic (numpy); collecting the gradients is the trainer's job.
"""
from __future__ import annotations

import dataclasses
import itertools
from typing import Mapping, Sequence

import numpy as np


def cosine_distances(grads: np.ndarray) -> np.ndarray:
    """``1 − cos`` between the rows of ``grads`` (ops × parameters); a zero gradient is at distance 1."""
    grads = np.asarray(grads, dtype=np.float64)
    norms = np.linalg.norm(grads, axis=1)
    unit = grads / np.where(norms > 0, norms, 1.0)[:, None]
    return np.clip(1.0 - unit @ unit.T, 0.0, 2.0)


def gradient_distances(batches: Sequence[np.ndarray]) -> np.ndarray:
    """The op-by-op distance matrix averaged over batches (each ops × parameters)."""
    if not batches:
        raise ValueError("gradient matching needs at least one batch")
    return np.mean([cosine_distances(g) for g in batches], axis=0)


def _group_distance(dist: np.ndarray, group: Sequence[int]) -> float:
    return float(sum(dist[a, b] for a, b in itertools.combinations(group, 2)))


@dataclasses.dataclass(frozen=True)
class Cut:
    """A two-group cut of one edge's ops (indices into that edge's op list) and its distances."""

    groups: tuple[tuple[int, ...], tuple[int, ...]]
    within: float  # sum of pairwise distances inside the groups
    total: float  # sum of all pairwise distances

    @property
    def score(self) -> float:
        """The disagreement the cut removes: total − within."""
        return self.total - self.within


def best_partition(dist: np.ndarray) -> Cut:
    """The balanced two-group cut (sizes ⌊n/2⌋ and ⌈n/2⌉) of the ``n`` ops of ``dist`` with the least
    within-group distance; ties go to the first in lexicographic order of the smaller group."""
    n = len(dist)
    if n < 2:
        raise ValueError("a cut needs at least two ops")
    total = _group_distance(dist, range(n))
    best: Cut | None = None
    for small in itertools.combinations(range(n), n // 2):
        rest = tuple(o for o in range(n) if o not in small)
        within = _group_distance(dist, small) + _group_distance(dist, rest)
        if best is None or within < best.within - 1e-12:
            best = Cut((small, rest), within, total)
    return best


def choose_split(distances: Mapping[int, np.ndarray]) -> tuple[int, Cut]:
    """``(edge, cut)`` of the edge whose best cut has the highest score (``distances``: edge → matrix
    over the ops that edge still allows)."""
    if not distances:
        raise ValueError("no edge left to split")
    cuts = {edge: best_partition(d) for edge, d in distances.items() if len(d) > 1}
    edge = max(cuts, key=lambda e: (cuts[e].score, -e))
    return edge, cuts[edge]
