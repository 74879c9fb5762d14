"""The strategy interface: a Ray Tune ``Searcher`` that proposes architectures of one space.

Contract (checked by ``raynas.testing.strategy_contract``):
  * all randomness comes from ``self.rng``, seeded at construction: same seed → same proposals;
  * ``suggest(trial_id)`` returns a trial config ``{"arch": str, "parent": str|None,
    "variation": str|None, "generation": int}`` (a ``Proposal``), never an arch outside the space;
  * ``on_trial_complete`` sees only the metrics the evaluator marks visible;
  * ``save``/``restore`` capture everything (RNG, history, pending trials), so a restored strategy
    continues exactly as the original would;
  * with ``dedup`` on (a ``Config`` field, see ``DEDUP_MODES``) no two proposals share a dedup key —
    the arch itself (``"arch"``) or its functional hash ``space.canonical`` (``"function"``) — as long as
    ``unseen`` finds a new one within its bounded retries; the number skipped is in ``report()``.
Subclasses implement ``_propose()`` and may override ``_observe``/``_state``/``_load_state``.

Collaborators are passed to the constructor, never set afterwards (as Optuna's samplers take
``constraints_func=``): ``feasible`` (arch -> bool, from the recipe's constraints and a cost model) and
``scorer`` (arch -> float, a zero-cost proxy) for strategies that declare one with ``scorer_proxy``.
Strategies stay torch-free: the runtime builds both from the layers below.
"""
from __future__ import annotations

import abc
import dataclasses
from typing import Any, Callable, Literal

import numpy as np
from ray.tune.search import Searcher

from raynas.metrics import MAX, VALID_ACC
from raynas.registry import Registry
from raynas.space.base import Arch, SearchSpace
from raynas.state import PickledState

STRATEGIES: Registry["Strategy"] = Registry("strategy", group="raynas.strategies")
DEDUP_OFF, DEDUP_ARCH, DEDUP_FUNCTION = "none", "arch", "function"
DEDUP_MODES = (DEDUP_OFF, DEDUP_ARCH, DEDUP_FUNCTION)
DedupMode = Literal["none", "arch", "function"]  # "none" rather than "off": YAML reads off as False
DEFAULT_MAX_RETRIES = 50


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


class Strategy(PickledState, Searcher, abc.ABC):
    """Base Searcher: bookkeeping of pending trials, history, seeded RNG and save/restore."""

    @dataclasses.dataclass
    class Config:
        pass

    def __init__(self, space: SearchSpace, config: Any = None, seed: int = 0,
                 metric: str = VALID_ACC, mode: str = MAX, *, feasible: Callable[[Arch], bool] | None = None,
                 scorer: Callable[[Arch], float] | None = None) -> None:
        super().__init__(metric=metric, mode=mode)
        self.space = space
        self.config = config if config is not None else self.Config()
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.pending: dict[str, Proposal] = {}
        self.history: list[Observation] = []
        self.seen: set[Any] = set()  # dedup keys of all proposals (only filled when dedup is on)
        self.num_duplicates_skipped = 0
        self.num_infeasible_skipped = 0
        self.feasible = feasible  # arch -> bool from a cost model (recipe constraints); not saved
        self.scorer = scorer  # arch -> proxy score, for strategies with a scorer_proxy; not saved

    @classmethod
    def metrics_read(cls, config: Any) -> dict[str, str]:
        """The visible metrics this strategy reads with ``config`` beyond its ``metric``, by the config
        field naming each (``{"objectives[1].metric": "latency_ms"}``); the runtime checks them against
        what the evaluator reports. Default: none."""
        return {}

    @classmethod
    def scorer_proxy(cls, config: Any) -> str | None:
        """The zero-cost proxy this strategy needs as ``scorer`` with ``config`` (default: none)."""
        return None

    # --- Tune Searcher API -------------------------------------------------------------------
    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        proposal = self._propose()
        if proposal is None:
            return None
        if self.dedup != DEDUP_OFF:
            self.seen.add(self.dedup_key(proposal.arch))
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

    # --- state -------------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "pending": dict(self.pending),
                "history": list(self.history), "seed": self.seed, "seen": set(self.seen),
                "num_duplicates_skipped": self.num_duplicates_skipped,
                "num_infeasible_skipped": self.num_infeasible_skipped, "strategy": self._state()}

    def set_state(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.pending = dict(state["pending"])
        self.history = list(state["history"])
        self.seed = state["seed"]
        self.seen = set(state["seen"])
        self.num_duplicates_skipped = state["num_duplicates_skipped"]
        self.num_infeasible_skipped = state["num_infeasible_skipped"]
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

    @property
    def dedup(self) -> str:
        return getattr(self.config, "dedup", DEDUP_OFF)

    def dedup_key(self, arch: Arch) -> Any:
        return self.space.canonical(arch) if self.dedup == DEDUP_FUNCTION else arch

    def unseen(self, make: Callable[[], Proposal]) -> Proposal:
        """Call ``make()`` until its arch is new (dedup) and feasible (constraints): at most
        ``max_retries`` extra calls, then as many uniform samples (a parent whose every child is
        infeasible or seen must not trap the search); with neither check on, exactly one call."""
        proposal = make()
        if self.dedup == DEDUP_OFF and self.feasible is None:
            return proposal
        retries = getattr(self.config, "max_retries", DEFAULT_MAX_RETRIES)
        for attempt in range(2 * retries):
            if self.acceptable(proposal.arch):
                break
            proposal = make() if attempt < retries else self.random_proposal()
        return proposal

    def acceptable(self, arch: Arch) -> bool:
        """New under dedup and feasible under the constraints (counting the rejections)."""
        if self.dedup != DEDUP_OFF and self.dedup_key(arch) in self.seen:
            self.num_duplicates_skipped += 1
            return False
        if self.feasible is not None and not self.feasible(arch):
            self.num_infeasible_skipped += 1
            return False
        return True

    def report(self) -> dict[str, float]:
        """Strategy-specific summary metrics logged at the end of a search (e.g. hypervolume)."""
        out = {}
        if self.dedup != DEDUP_OFF:
            out["duplicates_skipped"] = float(self.num_duplicates_skipped)
        if self.feasible is not None:
            out["infeasible_skipped"] = float(self.num_infeasible_skipped)
        return out

    def best(self) -> Observation | None:
        return max(self.history, key=lambda o: o.score, default=None)


def build_strategy(name: str, space: SearchSpace, config: Any = None, seed: int = 0, **collaborators: Any) -> Strategy:
    """The strategy registered as ``name``; ``collaborators``: ``metric``, ``mode``, ``feasible``, ``scorer``."""
    return STRATEGIES.get(name)(space, config, seed=seed, **collaborators)
