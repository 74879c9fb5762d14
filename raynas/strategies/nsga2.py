"""NSGA-II (Deb et al., 2002) as an asynchronous, steady-state Searcher.

The first ``population_size`` proposals are uniform samples. After that, each proposal picks two
parents by binary tournament on (front rank, crowding distance) from the current population, applies
crossover with probability ``crossover_prob`` and then a mutation. When a child's result arrives it
joins the population and, once the population exceeds ``population_size``, the worst member — last
front, smallest crowding distance — is removed (steady-state NSGA-II, which suits workers that finish
at different times). ``report()`` gives the Pareto front size and hypervolume over every evaluated
candidate, w.r.t. ``reference`` (one value per objective, in the objectives' own units).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from raynas.errors import RecipeError
from raynas.metrics import FLOPS, MAX, MIN, VALID_ACC
from raynas.strategies.base import DEDUP_FUNCTION, STRATEGIES, DedupMode, Observation, Proposal, Strategy
from raynas.strategies.pareto import (
    Objective,
    as_maximised,
    crowding_distance,
    hypervolume_2d,
    nondominated_fronts,
    pareto_front,
)
from raynas.typed import bounded


def _default_objectives() -> list[Objective]:
    return [Objective(VALID_ACC, MAX), Objective(FLOPS, MIN)]


@STRATEGIES.register("nsga2")
class NSGA2(Strategy):
    """Steady-state NSGA-II over the objectives in ``Config.objectives`` (2-D hypervolume reported)."""

    @dataclasses.dataclass
    class Config:
        objectives: list[Objective] = dataclasses.field(default_factory=_default_objectives)
        reference: list[float] = dataclasses.field(default_factory=lambda: [0.0, 250.0])
        population_size: int = bounded(20, gt=1)
        crossover_prob: float = bounded(0.5, ge=0, le=1)
        dedup: DedupMode = DEDUP_FUNCTION
        max_retries: int = bounded(50, ge=0)

        def validate(self, path: str) -> None:
            if len(self.objectives) < 2:
                raise RecipeError(f"{path}.objectives", "needs at least 2 objectives")
            if len(self.reference) != len(self.objectives):
                raise RecipeError(f"{path}.reference", f"needs one value per objective "
                                  f"({len(self.objectives)}), got {len(self.reference)}")

    @classmethod
    def metrics_read(cls, config: "NSGA2.Config") -> dict[str, str]:
        return {f"objectives[{i}].metric": o.metric for i, o in enumerate(config.objectives)}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._metric, self._mode = self.config.objectives[0].metric, self.config.objectives[0].mode
        self.population: list[Observation] = []
        self.num_proposed = 0

    def _points(self, observations: list[Observation]) -> np.ndarray:
        return as_maximised([o.metrics for o in observations], self.config.objectives)

    def _rank_and_crowding(self) -> tuple[np.ndarray, np.ndarray]:
        pts = self._points(self.population)
        rank, crowd = np.zeros(len(pts), dtype=int), np.zeros(len(pts))
        for r, front in enumerate(nondominated_fronts(pts)):
            rank[front] = r
            crowd[front] = crowding_distance(pts[front])
        return rank, crowd

    def _tournament(self, rank: np.ndarray, crowd: np.ndarray) -> Observation:
        i, j = (int(x) for x in self.rng.integers(len(self.population), size=2))
        better = i if (rank[i], -crowd[i]) <= (rank[j], -crowd[j]) else j
        return self.population[better]

    def _child(self, rank: np.ndarray, crowd: np.ndarray) -> Proposal:
        a, b = self._tournament(rank, crowd), self._tournament(rank, crowd)
        arch, how = a.proposal.arch, "mutation"
        if self.rng.random() < self.config.crossover_prob:
            arch, how = self.space.crossover(a.proposal.arch, b.proposal.arch, self.rng), "crossover+mutation"
        child = self.space.mutate(arch, self.rng)
        variation = f"{how}: {self.space.describe_mutation(a.proposal.arch, child)}"
        generation = max(a.proposal.generation, b.proposal.generation) + 1
        return Proposal(child, parent=a.proposal.arch, variation=variation, generation=generation)

    def _propose(self) -> Proposal:
        self.num_proposed += 1
        if self.num_proposed <= self.config.population_size or len(self.population) < 2:
            return self.unseen(self.random_proposal)
        rank, crowd = self._rank_and_crowding()
        return self.unseen(lambda: self._child(rank, crowd))

    def _observe(self, obs: Observation) -> None:
        if any(o.metric not in obs.metrics for o in self.config.objectives):
            return
        self.population.append(obs)
        if len(self.population) > self.config.population_size:
            rank, crowd = self._rank_and_crowding()
            worst = max(range(len(self.population)), key=lambda i: (rank[i], -crowd[i], i))
            self.population.pop(worst)

    def front(self) -> list[Observation]:
        """The Pareto front of every candidate evaluated so far."""
        done = [o for o in self.history if all(ob.metric in o.metrics for ob in self.config.objectives)]
        return [done[i] for i in pareto_front(self._points(done))] if done else []

    def report(self) -> dict[str, float]:
        out = super().report()
        front = self.front()
        out["pareto_front_size"] = float(len(front))
        if len(self.config.objectives) == 2 and front:
            ref = np.array([o.sign() * r for o, r in zip(self.config.objectives, self.config.reference)])
            out["hypervolume"] = hypervolume_2d(self._points(front), ref)
        return out

    def _state(self) -> dict:
        return {"population": list(self.population), "num_proposed": self.num_proposed}

    def _load_state(self, state: dict) -> None:
        self.population, self.num_proposed = list(state["population"]), state["num_proposed"]

