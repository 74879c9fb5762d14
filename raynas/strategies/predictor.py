"""Predictor-guided evolution (in the spirit of FBNetV3 / GBDT-NAS): a gradient-boosted-tree surrogate
trained online on the space's encodings screens many mutations, and only the most promising one per
proposal is sent to the evaluator.

Each proposal after the ``init_samples`` random ones: draw ``screen`` children, each a mutation of an
REA tournament winner (``sample_size`` of the ``population_size`` most recent results; aging removal),
predict their score with the surrogate, and propose the best unseen one. The surrogate
(scikit-learn ``GradientBoostingRegressor``, seeded) is refit every ``refit_every`` new results.
``report()`` gives the surrogate's Spearman ρ on the results it had not seen when it predicted them.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from raynas.strategies.base import DEDUP_FUNCTION, STRATEGIES, DedupMode, Observation, Proposal
from raynas.strategies.rea import AgingEvolution
from raynas.typed import bounded


@STRATEGIES.register("predictor_evolution")
class PredictorEvolution(AgingEvolution):
    """REA whose children are pre-screened by an online GBDT surrogate."""

    @dataclasses.dataclass
    class Config:
        population_size: int = bounded(20, gt=0)
        sample_size: int = bounded(5, gt=0)
        init_samples: int = bounded(20, gt=1)
        screen: int = bounded(100, gt=0)  # mutations scored by the surrogate per proposal
        refit_every: int = bounded(2, gt=0)
        n_estimators: int = bounded(50, gt=0)
        max_depth: int = bounded(3, gt=0)
        dedup: DedupMode = DEDUP_FUNCTION
        max_retries: int = bounded(50, ge=0)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.model: Any = None
        self.fitted_on = 0
        self.predicted: dict[Any, float] = {}  # arch -> prediction made before it was evaluated
        self.pairs: list[tuple[float, float]] = []  # (prediction, actual) for report()

    def _fit(self) -> None:
        from sklearn.ensemble import GradientBoostingRegressor

        x = np.stack([self.space.encode(o.proposal.arch) for o in self.history])
        y = np.array([o.score for o in self.history])
        self.model = GradientBoostingRegressor(n_estimators=self.config.n_estimators,
                                               max_depth=self.config.max_depth, random_state=0).fit(x, y)
        self.fitted_on = len(self.history)

    def _propose(self) -> Proposal:
        cfg = self.config
        self.num_proposed += 1
        if self.num_proposed <= cfg.init_samples or len(self.history) < 2:
            return self.unseen(self.random_proposal)
        if self.model is None or len(self.history) - self.fitted_on >= cfg.refit_every:
            self._fit()
        pool = [self.mutant(self.tournament()) for _ in range(cfg.screen)]
        fresh = [p for p in pool if self.acceptable(p.arch)] or pool
        preds = self.model.predict(np.stack([self.space.encode(p.arch) for p in fresh]))
        best = int(np.argmax(preds))
        self.predicted[fresh[best].arch] = float(preds[best])
        return fresh[best]

    def _observe(self, obs: Observation) -> None:
        super()._observe(obs)
        pred = self.predicted.pop(obs.proposal.arch, None)
        if pred is not None:
            self.pairs.append((pred, obs.score))

    def report(self) -> dict[str, float]:
        out = super().report()
        if len(self.pairs) >= 3:
            from scipy.stats import spearmanr

            pred, actual = zip(*self.pairs)
            out["surrogate_spearman"] = float(spearmanr(pred, actual).statistic)
        return out

    def _state(self) -> dict:
        return {**super()._state(), "model": self.model,
                "fitted_on": self.fitted_on, "predicted": dict(self.predicted), "pairs": list(self.pairs)}

    def _load_state(self, state: dict) -> None:
        super()._load_state(state)
        self.model, self.fitted_on = state["model"], state["fitted_on"]
        self.predicted, self.pairs = dict(state["predicted"]), list(state["pairs"])
