"""BANANAS-style search (White, Neiswanger, Savani, 2021): an ensemble of predictors, its spread as the
uncertainty, an acquisition over candidates made by mutating the best archs so far.

After ``init_samples`` uniform samples, each proposal:
  1. refits the ensemble once ``refit_every`` new results came in since the last fit (or
     ``refit_growth`` times the number fitted, if more: a long search refits O(log n) times):
     ``ensemble_size`` gradient-boosted tree regressors (``strategies/boosting.py``), or with
     ``predictor: ridge`` ridge regressions (``strategies/ridge.py``: ``ridge_alpha``, optional pairwise
     ``interactions``), on ``space.encode(arch)`` (plus the zero-cost proxy as one more feature when
     ``proxy`` is set), each on
     its own bootstrap resample of the results with its own stochastic-boosting generator, both drawn
     from ``self.rng``; scores below their ``clip_quantile`` are raised to it (NB201's dead cells score
     ~10 % and would otherwise take the trees' first splits);
  2. makes candidates from the ``parents`` best results: ``candidates`` mutants (``space.mutate``,
     ``mutations`` times each; parents round-robin), or with ``candidate_mode: neighbours`` every
     neighbour of each parent (``space.neighbours``), or with ``candidate_mode: all`` every arch of a
     space of at most ``MAX_ENUMERATED`` archs (``space.enumerate``; its lineage: the best result so
     far); keeps the acceptable ones (new, feasible);
  3. scores them by the acquisition on the ensemble's mean μ and standard deviation σ: independent
     Thompson sampling (``its``: one draw from N(μ, σ²) per candidate) or ``ucb`` (μ + ``ucb_beta``·σ),
     and proposes the best.
Asynchronous proposals use the latest fit; pending archs are already in ``seen``, so parallel
proposals differ. The proxy (``scorer``, passed in by the runtime; cached per functional hash) keeps the
strategy torch-free. ``report()`` gives the mean wall milliseconds per proposal (refits included) and
the number of refits. Defaults tuned on NB201 CIFAR-10 seeds 1000..1039 (``benchmarks/nb201_tune.py``,
docs/BENCHMARKS.md).
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any, Literal

import numpy as np

from raynas.errors import RecipeError
from raynas.space.base import Arch
from raynas.strategies.base import DEDUP_FUNCTION, DEDUP_OFF, STRATEGIES, DedupMode, Proposal, Strategy
from raynas.strategies.boosting import BoostedTrees
from raynas.strategies.proxy_prefilter import cached_score
from raynas.strategies.ridge import Ridge
from raynas.typed import bounded

ITS, UCB = "its", "ucb"
Acquisition = Literal["its", "ucb"]
Proxy = Literal["synflow", "naswot", "grad_norm", "snip"]
MUTANTS, NEIGHBOURS, ALL = "mutants", "neighbours", "all"
CandidateMode = Literal["mutants", "neighbours", "all"]
MAX_ENUMERATED = 100_000  # candidate_mode: all scores every arch of a space up to this size
TREES, RIDGE = "trees", "ridge"
Predictor = Literal["trees", "ridge"]


@STRATEGIES.register("bananas")
class Bananas(Strategy):
    """Ensemble-predictor search with an acquisition over mutants of the best archs."""

    @dataclasses.dataclass
    class Config:
        init_samples: int = bounded(10, gt=1)
        ensemble_size: int = bounded(5, gt=1)
        predictor: Predictor = TREES  # the members: boosted trees, or ridge regressions (strategies/ridge.py)
        ridge_alpha: float = bounded(1.0, gt=0)  # ridge: the L2 penalty
        interactions: bool = False  # ridge: pairwise products of the features as extra features
        n_estimators: int = bounded(50, gt=0)
        max_depth: int = bounded(3, gt=0)
        learning_rate: float = bounded(0.1, gt=0)
        subsample: float = bounded(0.8, gt=0, le=1)  # stochastic boosting: rows per tree
        # scores below this quantile of the results are raised to it before fitting, so the trees spend
        # their splits on ranking the good archs rather than on the dead ones (0: the raw scores)
        clip_quantile: float = bounded(0.5, ge=0, lt=1)
        acquisition: Acquisition = ITS
        ucb_beta: float = bounded(1.0, ge=0)
        candidates: int = bounded(100, gt=0)
        parents: int = bounded(10, gt=0)
        mutations: int = bounded(1, gt=0)  # mutations applied to a parent per candidate
        # or every neighbour of each parent (space.neighbours), or every arch of a small space (all)
        candidate_mode: CandidateMode = MUTANTS
        refit_every: int = bounded(1, gt=0)
        refit_growth: float = bounded(0.05, ge=0)  # ... or a share of the results fitted, if more
        proxy: Proxy | None = None  # a zero-cost proxy as an extra feature
        dedup: DedupMode = DEDUP_FUNCTION
        max_retries: int = bounded(50, ge=0)

        def validate(self, path: str) -> None:
            if self.candidate_mode == ALL and self.proxy is not None:
                raise RecipeError(f"{path}.candidate_mode",
                                  "'all' needs proxy: null (it would score every arch with the proxy)")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.models: list[Any] = []
        self.fitted_on = 0
        self.num_proposed = self.num_refits = 0
        self.propose_s = 0.0
        self.proxy_cache: dict[str, float] = {}
        self._space_table: tuple | None = None  # ALL: derived, not saved
        if self.config.candidate_mode == ALL:
            self._check_enumerable()

    def _check_enumerable(self) -> None:
        size = self.space.size()
        if size is None or size > MAX_ENUMERATED:
            raise RecipeError("strategy.candidate_mode", f"'all' scores every arch of the space; {self.space.name} "
                              f"has {'too many' if size is None else f'{size:,}'} (at most {MAX_ENUMERATED:,})")

    @classmethod
    def scorer_proxy(cls, config: "Bananas.Config") -> str | None:
        return config.proxy

    # --- proposals ---------------------------------------------------------------------------
    def _propose(self) -> Proposal:
        start = time.perf_counter()
        try:
            return self._choose()
        finally:
            self.num_proposed += 1
            self.propose_s += time.perf_counter() - start

    def _choose(self) -> Proposal:
        if self.num_proposed < self.config.init_samples or len(self.history) < 2:
            return self.unseen(self.random_proposal)
        if not self.models or len(self.history) - self.fitted_on >= self._refit_gap():
            self._fit()
        if self.config.candidate_mode == ALL:
            return self._choose_from_space()
        pool = [p for p in self._candidates() if self.acceptable(p.arch)]
        if not pool:
            return self.unseen(self.random_proposal)
        x = np.stack([self._features(p.arch) for p in pool])
        return pool[int(np.argmax(self._acquire(x)))]

    def _choose_from_space(self) -> Proposal:
        """``candidate_mode: all``: the acquisition's best among every new, feasible arch of the space
        (its lineage: the best result so far, the arch it improves on)."""
        archs, keys, x, feasible = self._everything()
        new = np.array([self.dedup == DEDUP_OFF or key not in self.seen for key in keys])
        rows = np.flatnonzero(new & feasible)
        if not len(rows):
            return self.unseen(self.random_proposal)
        best = rows[int(np.argmax(self._acquire(x[rows])))]
        return self._child(self.best().proposal, archs[best])

    def _everything(self) -> tuple[list[Arch], list[Any], np.ndarray, np.ndarray]:
        """Every arch of the space, its dedup key, features and feasibility under the constraints
        (computed once per process: all four depend on the arch alone)."""
        if self._space_table is None:
            archs = list(self.space.enumerate())
            ok = [True] * len(archs) if self.feasible is None else [self.feasible(a) for a in archs]
            self._space_table = (archs, [self.dedup_key(a) for a in archs],
                                 np.stack([self._features(a) for a in archs]), np.array(ok))
        return self._space_table

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_space_table": None}  # derived from the space; rebuilt when needed

    def _refit_gap(self) -> int:
        """New results that trigger a refit: ``refit_every``, or ``refit_growth`` of the results fitted
        (so a long search refits O(log n) times, not n times)."""
        return max(self.config.refit_every, int(self.config.refit_growth * self.fitted_on))

    def _candidates(self) -> list[Proposal]:
        ranked = [o.proposal for o in sorted(self.history, key=lambda o: o.score, reverse=True)[:self.config.parents]]
        if self.config.candidate_mode == NEIGHBOURS:
            return [self._child(p, near) for p in ranked for near in self.space.neighbours(p.arch)]
        out = []
        for i in range(self.config.candidates):
            parent = ranked[i % len(ranked)]
            child = parent.arch
            for _ in range(self.config.mutations):
                child = self.space.mutate(child, self.rng)
            out.append(self._child(parent, child))
        return out

    def _child(self, parent: Proposal, child: Arch) -> Proposal:
        return Proposal(child, parent=parent.arch, variation=self.space.describe_mutation(parent.arch, child),
                        generation=parent.generation + 1)

    def _acquire(self, x: np.ndarray) -> np.ndarray:
        """The acquisition value of each candidate (rows of features ``x``; larger is better)."""
        preds = np.stack([m.predict(x) for m in self.models])
        mean, std = preds.mean(axis=0), preds.std(axis=0)
        if self.config.acquisition == ITS:
            return self.rng.normal(mean, std)
        return mean + self.config.ucb_beta * std

    # --- the ensemble ------------------------------------------------------------------------
    def _fit(self) -> None:
        """Fit every member on its own bootstrap resample with its own generator, both from ``self.rng``."""
        cfg = self.config
        x = np.stack([self._features(o.proposal.arch) for o in self.history])
        y = np.array([o.score for o in self.history])
        y = np.maximum(y, np.quantile(y, cfg.clip_quantile))
        self.models = []
        for _ in range(cfg.ensemble_size):
            rows = self.rng.integers(0, len(y), size=len(y))
            member = np.random.default_rng(self.rng.integers(2**63))
            self.models.append(self._member().fit(x[rows], y[rows], member))
        self.fitted_on = len(self.history)
        self.num_refits += 1

    def _member(self) -> BoostedTrees | Ridge:
        cfg = self.config
        if cfg.predictor == RIDGE:
            return Ridge(alpha=cfg.ridge_alpha, interactions=cfg.interactions)
        return BoostedTrees(n_estimators=cfg.n_estimators, max_depth=cfg.max_depth,
                            learning_rate=cfg.learning_rate, subsample=cfg.subsample)

    def _features(self, arch: Arch) -> np.ndarray:
        enc = self.space.encode(arch)
        if self.config.proxy is None:
            return enc
        return np.append(enc, cached_score(self, self.proxy_cache, arch))


    # --- report and state --------------------------------------------------------------------
    def report(self) -> dict[str, float]:
        out = {**super().report(), "refits": float(self.num_refits)}
        if self.num_proposed:
            out["ms_per_proposal"] = 1000.0 * self.propose_s / self.num_proposed
        return out

    def _state(self) -> dict:
        return {"models": list(self.models), "fitted_on": self.fitted_on, "num_proposed": self.num_proposed,
                "num_refits": self.num_refits, "propose_s": self.propose_s, "proxy_cache": dict(self.proxy_cache)}

    def _load_state(self, state: dict) -> None:
        self.models, self.fitted_on = list(state["models"]), state["fitted_on"]
        self.num_proposed, self.num_refits = state["num_proposed"], state["num_refits"]
        self.propose_s, self.proxy_cache = state["propose_s"], dict(state["proxy_cache"])
