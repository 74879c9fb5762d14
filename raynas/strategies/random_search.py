"""Random search: every proposal is a uniform sample of the space (the baseline every NAS method must beat)."""
from __future__ import annotations

from raynas.strategies.base import STRATEGIES, Proposal, Strategy


@STRATEGIES.register("random")
class RandomSearch(Strategy):
    """Uniform sampling with the strategy's own seeded RNG."""

    def _propose(self) -> Proposal:
        return self.random_proposal()
