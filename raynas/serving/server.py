"""``SupernetServer``: a Ray actor holding one supernet's weights and scoring subnets in batches.

Contract:
  * Built from a ``ModelSpec`` and the shared ``EvalData`` (an object ref: Ray resolves it, zero-copy);
    it sets torch's thread count to ``num_threads`` (default: the whole CPUs it was given, at least 1).
  * ``load(weights)`` takes the weights as a dict of numpy arrays — pass the object ref of a ``ray.put``
    dict, so N replicas read one copy from the object store — and returns their content hash.
  * ``evaluate(archs)`` scores a list of arch strings (``space.to_str`` form) with the weights loaded at
    that moment and returns ``{"version": <hash>, "results": [<SubnetScorer.score dict>, …]}``;
    before any ``load`` it raises ``NotLoadedError``.
  * A replica runs one call at a time, in the order a caller submitted them (a plain Ray actor): a
    ``load`` submitted after an ``evaluate`` takes effect after it. This is what makes a hot swap safe.
"""
from __future__ import annotations

import math
import os
from typing import Any, Sequence

from raynas.serving.scorer import SubnetScorer
from raynas.serving.spec import EvalData, ModelSpec

VERSION, RESULTS = "version", "results"


def threads_for(num_cpus: float) -> int:
    """Torch threads for a replica given ``num_cpus`` (fractions round down, at least one)."""
    return max(1, math.floor(num_cpus))


class SupernetServer:
    """The actor class (wrap with ``ray.remote``; ``ServerPool`` does)."""

    def __init__(self, spec: ModelSpec, data: EvalData, num_threads: int | None = None) -> None:
        self.scorer = SubnetScorer(spec, data, num_threads=num_threads)
        self.served = 0

    def load(self, weights: dict[str, Any]) -> str:
        return self.scorer.load(weights)

    def evaluate(self, archs: Sequence[str]) -> dict[str, Any]:
        space = self.scorer.space
        results = [self.scorer.score(space.from_str(a)) for a in archs]
        self.served += len(archs)
        return {VERSION: self.scorer.version, RESULTS: results}

    def version(self) -> str | None:
        return self.scorer.version

    def info(self) -> dict[str, Any]:
        """Where it runs and what it serves: pid, Ray node id, the GPU ids Ray assigned it and the
        torch device it chose from them, threads, archs served, weights version, BN cache size."""
        import ray
        import torch

        return {"pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id(),
                "gpu_ids": [str(g) for g in ray.get_gpu_ids()],
                "device": str(self.scorer.device), "threads": torch.get_num_threads(),
                "served": self.served, "version": self.scorer.version, "bn_cache": len(self.scorer.bn_cache)}
