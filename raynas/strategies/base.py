"""The strategy interface: a Ray Tune ``Searcher`` that proposes architectures of one space.

Contract (checked by ``raynas.testing.strategy_contract``):
  * all randomness comes from ``self.rng``, seeded at construction: same seed → same proposals;
  * ``suggest(trial_id)`` returns a trial config ``{"arch": str, "parent": str|None,
    "variation": str|None, "generation": int}`` (a ``Proposal``), never an arch outside the space;
  * ``on_trial_complete`` sees only the metrics the evaluator marks visible;
  * ``save``/``restore`` capture everything (RNG, history, pending trials), so a restored strategy
    continues exactly as the original would.
Subclasses implement ``_propose()`` and may override ``_observe``/``_state``/``_load_state``.
"""
from __future__ import annotations

import abc
import dataclasses
import pickle
from typing import Any

import numpy as np
from ray.tune.search import Searcher

from raynas.evaluators.base import VALID_ACC
from raynas.registry import Registry
from raynas.space.base import Arch, SearchSpace

STRATEGIES: Registry["Strategy"] = Registry("strategy")
MAX, MIN = "max", "min"


@dataclasses.dataclass(frozen=True)
class Proposal:
    """A proposed arch with its lineage (``parent`` arch string, ``variation`` description)."""

    arch: Arch
    parent: Arch | None = None
    variation: str | None = None
    generation: int = 0


@dataclasses.dataclass(frozen=True)
class Observation:
    proposal: Proposal
    score: float  # the metric, sign-adjusted so that larger is better
    metrics: dict[str, float]


class Strategy(Searcher, abc.ABC):
    """Base Searcher: bookkeeping of pending trials, history, seeded RNG and save/restore."""

    @dataclasses.dataclass
    class Config:
        pass

    def __init__(self, space: SearchSpace, config: Any = None, seed: int = 0,
                 metric: str = VALID_ACC, mode: str = MAX) -> None:
        super().__init__(metric=metric, mode=mode)
        self.space = space
        self.config = config if config is not None else self.Config()
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.pending: dict[str, Proposal] = {}
        self.history: list[Observation] = []

    # --- Tune Searcher API -------------------------------------------------------------------
    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        proposal = self._propose()
        if proposal is None:
            return None
        self.pending[trial_id] = proposal
        return self.to_config(proposal)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        proposal = self.pending.pop(trial_id, None)
        if proposal is None or error or not result or self.metric not in result:
            return
        sign = 1.0 if self.mode == MAX else -1.0
        obs = Observation(proposal, sign * float(result[self.metric]),
                          {k: float(v) for k, v in result.items() if isinstance(v, (int, float))})
        self.history.append(obs)
        self._observe(obs)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.get_state(), f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.set_state(pickle.load(f))

    # --- state -------------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "pending": dict(self.pending),
                "history": list(self.history), "seed": self.seed, "strategy": self._state()}

    def set_state(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.pending = dict(state["pending"])
        self.history = list(state["history"])
        self.seed = state["seed"]
        self._load_state(state["strategy"])

    def _state(self) -> Any:
        return None

    def _load_state(self, state: Any) -> None:
        pass

    # --- hooks -------------------------------------------------------------------------------
    @abc.abstractmethod
    def _propose(self) -> Proposal | None: ...

    def _observe(self, obs: Observation) -> None:
        pass

    # --- helpers -----------------------------------------------------------------------------
    def to_config(self, p: Proposal) -> dict[str, Any]:
        return {"arch": self.space.to_str(p.arch),
                "parent": None if p.parent is None else self.space.to_str(p.parent),
                "variation": p.variation, "generation": p.generation}

    def random_proposal(self) -> Proposal:
        return Proposal(self.space.sample(self.rng), variation="random")

    def best(self) -> Observation | None:
        return max(self.history, key=lambda o: o.score, default=None)


def build_strategy(name: str, space: SearchSpace, config: Any = None, seed: int = 0) -> Strategy:
    return STRATEGIES.get(name)(space, config, seed=seed)
