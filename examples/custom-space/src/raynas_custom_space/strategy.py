"""``hill_climb``: a (1+1) hill climber — ``warmup`` uniform samples, then mutations of the best so far.

All randomness comes from the strategy's seeded ``self.rng``; its whole state (history, RNG, pending
trials) is the base ``Strategy``'s, so ``save``/``restore`` need nothing more.
"""
from __future__ import annotations

import dataclasses

from raynas.strategies.base import DEDUP_FUNCTION, STRATEGIES, DedupMode, Proposal, Strategy
from raynas.typed import bounded

CLIMB = "climb"  # the variation of a mutated proposal's lineage, before the space's description


@STRATEGIES.register("hill_climb")
class HillClimb(Strategy):
    """Mutate the best arch observed so far; sample uniformly until ``warmup`` results are in."""

    @dataclasses.dataclass
    class Config:
        warmup: int = bounded(5, gt=0)  # uniform samples before climbing
        dedup: DedupMode = DEDUP_FUNCTION  # never propose an arch computing a function already proposed
        max_retries: int = bounded(50, ge=0)

    def _propose(self) -> Proposal:
        best = self.best()
        if best is None or len(self.history) < self.config.warmup:
            return self.unseen(self.random_proposal)
        return self.unseen(lambda: self._climb(best.proposal))

    def _climb(self, parent: Proposal) -> Proposal:
        child = self.space.mutate(parent.arch, self.rng)
        return Proposal(child, parent=parent.arch,
                        variation=f"{CLIMB}: {self.space.describe_mutation(parent.arch, child)}",
                        generation=parent.generation + 1)
