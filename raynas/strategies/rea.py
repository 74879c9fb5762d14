"""Regularized evolution (REA; Real et al., 2019, "Aging evolution").

A population of the ``population_size`` most recent models is kept. While fewer than that many
proposals were made, proposals are uniform samples. After that, each proposal mutates the best of
``sample_size`` population members drawn uniformly without replacement (tournament selection); each
completed child joins the population and the **oldest** member leaves (age-based removal, not
worst-based). With concurrent workers, a proposal made while the population is still filling but all
random seeds are already out uses the tournament over what has completed so far.

Duplicates (``dedup``, see ``Strategy.unseen``). The textbook algorithm (``dedup="none"``, which draws
exactly its random numbers) spends budget re-evaluating archs it already proposed: on NB201 at ~100
evaluations, about a quarter of them compute the same function as an earlier one. With ``"function"``
(the default) a sample or mutant whose ``space.canonical`` key was already proposed is re-drawn — another
uniform sample in the fill phase, another mutation of the same tournament winner after it — at most
``max_retries`` times. Defaults were tuned on NB201 (``benchmarks/nb201_search.py``, docs/BENCHMARKS.md);
the textbook setting is ``population_size=10, sample_size=3, dedup="none"``.
"""
from __future__ import annotations

import collections
import dataclasses

from raynas.strategies.base import DEDUP_FUNCTION, STRATEGIES, DedupMode, Observation, Proposal, Strategy
from raynas.typed import bounded


class AgingEvolution(Strategy):
    """What REA-style strategies share: an aging population of the ``population_size`` most recent
    results, tournament selection over ``sample_size`` members, single mutations with lineage, and
    the proposal counter. Subclasses' ``Config`` must have ``population_size`` and ``sample_size``;
    subclasses extending ``_state`` call ``super()._state()``."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.population: collections.deque[Observation] = collections.deque()
        self.num_proposed = 0

    def tournament(self) -> Proposal:
        """The best of ``sample_size`` members drawn uniformly without replacement."""
        pop = self.population
        picks = self.rng.choice(len(pop), size=min(self.config.sample_size, len(pop)), replace=False)
        return max((pop[int(i)] for i in picks), key=lambda o: o.score).proposal

    def mutant(self, parent: Proposal) -> Proposal:
        child = self.space.mutate(parent.arch, self.rng)
        return Proposal(child, parent=parent.arch, variation=self.space.describe_mutation(parent.arch, child),
                        generation=parent.generation + 1)

    def _observe(self, obs: Observation) -> None:
        self.population.append(obs)
        while len(self.population) > self.config.population_size:
            self.population.popleft()

    def _state(self) -> dict:
        return {"population": list(self.population), "num_proposed": self.num_proposed}

    def _load_state(self, state: dict) -> None:
        self.population = collections.deque(state["population"])
        self.num_proposed = state["num_proposed"]


@STRATEGIES.register("rea")
class RegularizedEvolution(AgingEvolution):
    """Aging evolution with tournament selection; lineage (parent, mutation) is in every proposal."""

    @dataclasses.dataclass
    class Config:
        population_size: int = bounded(30, gt=0)
        sample_size: int = bounded(10, gt=0)
        dedup: DedupMode = DEDUP_FUNCTION
        max_retries: int = bounded(50, ge=0)

    def _propose(self) -> Proposal:
        self.num_proposed += 1
        if self.num_proposed <= self.config.population_size or not self.population:
            return self.unseen(self.random_proposal)
        parent = self.tournament()
        return self.unseen(lambda: self.mutant(parent))
