"""Random search: every proposal is a uniform sample of the space (the baseline every NAS method must beat)."""
from __future__ import annotations

import dataclasses

from raynas.strategies.base import DEDUP_OFF, STRATEGIES, DedupMode, Proposal, Strategy
from raynas.typed import bounded


@STRATEGIES.register("random")
class RandomSearch(Strategy):
    """Uniform sampling with the strategy's own seeded RNG; ``dedup`` makes it sample without
    replacement (by arch or by function)."""

    @dataclasses.dataclass
    class Config:
        dedup: DedupMode = DEDUP_OFF
        max_retries: int = bounded(50, ge=0)

    def _propose(self) -> Proposal:
        return self.unseen(self.random_proposal)
