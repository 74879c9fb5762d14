"""MAP-Elites (Mouret & Clune, 2015): illuminate a 2-D behaviour grid with the best arch per cell.

Behaviour descriptors are visible cost metrics (default: FLOPs × latency), each split into ``bins``
equal bins over ``[low, high]`` (values outside are clipped to the edge bins). The first
``init_samples`` proposals are uniform samples; after that a proposal mutates (or, with probability
``crossover_prob``, crosses over then mutates) elites picked uniformly from the archive. A result
replaces its cell's elite when its fitness is higher. ``report()`` gives coverage (filled cells ÷
cells) and the QD-score (sum of the elites' fitness; fitness must be ≥ 0, e.g. accuracy).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from raynas.errors import RecipeError
from raynas.metrics import FLOPS, LATENCY, VALID_ACC
from raynas.strategies.base import DEDUP_FUNCTION, STRATEGIES, DedupMode, Observation, Proposal, Strategy
from raynas.typed import bounded


@dataclasses.dataclass
class Descriptor:
    """One behaviour axis: a visible metric binned over ``[low, high]``."""

    metric: str
    low: float
    high: float
    bins: int = bounded(10, gt=0)

    def validate(self, path: str) -> None:
        if not self.high > self.low:
            raise RecipeError(f"{path}.high", f"must be > low ({self.low}), got {self.high}")

    def bin(self, value: float) -> int:
        frac = (value - self.low) / (self.high - self.low)
        return int(np.clip(np.floor(frac * self.bins), 0, self.bins - 1))


def _default_descriptors() -> list[Descriptor]:
    return [Descriptor(FLOPS, 0.0, 230.0, 10), Descriptor(LATENCY, 0.0, 40.0, 10)]


@STRATEGIES.register("map_elites")
class MapElites(Strategy):
    """Quality-diversity search over ``Config.descriptors``; fitness is ``Config.fitness`` (maximised)."""

    @dataclasses.dataclass
    class Config:
        fitness: str = VALID_ACC
        descriptors: list[Descriptor] = dataclasses.field(default_factory=_default_descriptors)
        init_samples: int = bounded(20, gt=0)
        crossover_prob: float = bounded(0.2, ge=0, le=1)
        dedup: DedupMode = DEDUP_FUNCTION
        max_retries: int = bounded(50, ge=0)

        def validate(self, path: str) -> None:
            if len(self.descriptors) != 2:
                raise RecipeError(f"{path}.descriptors", f"needs exactly 2 axes, got {len(self.descriptors)}")

    @classmethod
    def metrics_read(cls, config: "MapElites.Config") -> dict[str, str]:
        return {"fitness": config.fitness,
                **{f"descriptors[{i}].metric": d.metric for i, d in enumerate(config.descriptors)}}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._metric = self.config.fitness
        self.archive: dict[tuple[int, int], Observation] = {}
        self.num_proposed = 0

    def cell(self, metrics: dict[str, float]) -> tuple[int, int] | None:
        if any(d.metric not in metrics for d in self.config.descriptors):
            return None
        a, b = (d.bin(metrics[d.metric]) for d in self.config.descriptors)
        return a, b

    def _pick(self) -> Observation:
        keys = sorted(self.archive)
        return self.archive[keys[int(self.rng.integers(len(keys)))]]

    def _child(self) -> Proposal:
        a = self._pick()
        arch, how = a.proposal.arch, "mutation"
        if self.rng.random() < self.config.crossover_prob:
            arch, how = self.space.crossover(arch, self._pick().proposal.arch, self.rng), "crossover+mutation"
        child = self.space.mutate(arch, self.rng)
        return Proposal(child, parent=a.proposal.arch,
                        variation=f"{how}: {self.space.describe_mutation(a.proposal.arch, child)}",
                        generation=a.proposal.generation + 1)

    def _propose(self) -> Proposal:
        self.num_proposed += 1
        if self.num_proposed <= self.config.init_samples or not self.archive:
            return self.unseen(self.random_proposal)
        return self.unseen(self._child)

    def _observe(self, obs: Observation) -> None:
        cell = self.cell(obs.metrics)
        if cell is None:
            return
        elite = self.archive.get(cell)
        if elite is None or obs.score > elite.score:
            self.archive[cell] = obs

    def report(self) -> dict[str, float]:
        cells = int(np.prod([d.bins for d in self.config.descriptors]))
        return {**super().report(), "archive_size": float(len(self.archive)),
                "coverage": len(self.archive) / cells,
                "qd_score": float(sum(o.score for o in self.archive.values()))}

    def _state(self) -> dict:
        return {"archive": dict(self.archive), "num_proposed": self.num_proposed}

    def _load_state(self, state: dict) -> None:
        self.archive, self.num_proposed = dict(state["archive"]), state["num_proposed"]
