"""Zero-cost prefilter: rank many candidates by a training-free proxy, evaluate only the best.

Each proposal draws ``screen`` candidates — uniform samples during the first ``init_samples``
proposals, afterwards mutations of REA tournament winners (``sample_size`` of the
``population_size`` most recent results) — scores them with the proxy (``Config.proxy``, computed by
``raynas.evaluators.zero_cost`` on untrained networks; cached per functional hash) and proposes the
highest-scoring new one. The strategy itself stays torch-free: it is constructed with ``scorer``
(arch -> float; ``build_search`` makes it from ``scorer_proxy``). Proxy wall time is not charged to the
simulated clock (a proxy costs well under a second; a training run costs minutes); ``report()`` gives
the number of proxy evaluations.
"""
from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np

from raynas.space.base import Arch
from raynas.strategies.base import DEDUP_FUNCTION, STRATEGIES, DedupMode, Proposal, Strategy
from raynas.strategies.rea import AgingEvolution
from raynas.typed import bounded


def cached_score(strategy: Strategy, cache: dict[str, float], arch: Arch) -> float:
    """``strategy.scorer(arch)``, cached in ``cache`` per functional hash (``space.canonical``); a
    ``RuntimeError`` naming the strategy when it was built without a scorer."""
    if strategy.scorer is None:
        name = type(strategy).__name__
        raise RuntimeError(f"{name} needs a scorer: construct it with scorer= (build_search does)")
    key = strategy.space.canonical(arch)
    if key not in cache:
        cache[key] = float(strategy.scorer(arch))
    return cache[key]


@STRATEGIES.register("proxy_prefilter")
class ProxyPrefilter(AgingEvolution):
    """Proxy-screened proposals (see the module docstring)."""

    @dataclasses.dataclass
    class Config:
        proxy: Literal["synflow", "naswot", "grad_norm", "snip"] = "naswot"
        screen: int = bounded(10, gt=0)
        init_samples: int = bounded(10, gt=0)
        population_size: int = bounded(10, gt=0)
        sample_size: int = bounded(3, gt=0)
        dedup: DedupMode = DEDUP_FUNCTION
        max_retries: int = bounded(50, ge=0)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.cache: dict[str, float] = {}

    @classmethod
    def scorer_proxy(cls, config: "ProxyPrefilter.Config") -> str:
        return config.proxy

    def score(self, arch: Arch) -> float:
        return cached_score(self, self.cache, arch)

    def _candidate(self) -> Proposal:
        if self.num_proposed <= self.config.init_samples or not self.population:
            return self.random_proposal()
        return self.mutant(self.tournament())

    def _propose(self) -> Proposal:
        self.num_proposed += 1
        pool = [self._candidate() for _ in range(self.config.screen)]
        fresh = [p for p in pool if self.acceptable(p.arch)] or pool
        scores = [self.score(p.arch) for p in fresh]
        return fresh[int(np.argmax(scores))]

    def report(self) -> dict[str, float]:
        return {**super().report(), "proxy_evaluations": float(len(self.cache))}

    def _state(self) -> dict:
        return {**super()._state(), "cache": dict(self.cache)}

    def _load_state(self, state: dict) -> None:
        super()._load_state(state)
        self.cache = dict(state["cache"])
