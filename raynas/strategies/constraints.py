"""Recipe constraints on cost metrics (``latency_ms <= 5``): checked on the cost model before a
candidate is proposed, and on the measured metrics when its result arrives."""
from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

from raynas.errors import RecipeError


@dataclasses.dataclass
class Constraint:
    """``min <= metrics[metric] <= max`` (either bound may be omitted)."""

    metric: str
    max: float | None = None
    min: float | None = None

    def validate(self, path: str) -> None:
        if self.max is None and self.min is None:
            raise RecipeError(path, "set max or min")
        if self.max is not None and self.min is not None and self.min > self.max:
            raise RecipeError(f"{path}.min", f"must be <= max ({self.max}), got {self.min}")

    def ok(self, metrics: dict[str, float]) -> bool:
        value = metrics.get(self.metric)
        if value is None:
            return True
        return (self.max is None or value <= self.max) and (self.min is None or value >= self.min)


def satisfied(constraints: Sequence[Constraint], metrics: dict[str, float]) -> bool:
    return all(c.ok(metrics) for c in constraints)


def feasibility(constraints: Sequence[Constraint], cost_fn: Callable[[object], dict[str, float]]):
    """A predicate ``arch -> bool`` from a cost model, or ``None`` when there is nothing to check."""
    if not constraints:
        return None
    return lambda arch: satisfied(constraints, cost_fn(arch))
