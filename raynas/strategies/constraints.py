"""Recipe constraints on cost metrics (``latency_ms <= 5``, optionally ``on device X``): checked on the
cost model before a candidate is proposed, and on the measured metrics when its result arrives.

A constraint without ``latency_device`` reads the metric the evaluator reports (its latency device).
With ``latency_device`` it reads ``latency_ms.<device>``, the latency on that device from the cost
model (the NB201 table's device column, or the op-wise LUT in ``lut_path`` for other spaces), so one
recipe can bound latency on several devices at once; those metrics are added to every candidate.

No constraint passes for want of its metric: ``raynas.runtime`` rejects, at validate time, a constraint
whose metric neither the evaluator nor a cost model of the recipe produces (``check_metrics``), and a
result that lacks a constrained metric is a ``MissingMetricError``, never a pass. Before evaluation
only the constraints the cost model can answer are checked (``feasibility``)."""
from __future__ import annotations

import dataclasses
from typing import Callable, Collection, Sequence

from raynas.errors import RecipeError
from raynas.metrics import LATENCY, device_metric


@dataclasses.dataclass
class Constraint:
    """``min <= metrics[key] <= max`` (either bound may be omitted); ``key`` is ``metric``, or
    ``latency_ms.<latency_device>`` for a latency bound on a given device."""

    metric: str
    max: float | None = None
    min: float | None = None
    latency_device: str | None = None  # NB201: a table device; other spaces: the device of lut_path
    lut_path: str | None = None  # op-wise latency LUT of latency_device (spaces without a table)

    def validate(self, path: str) -> None:
        if self.max is None and self.min is None:
            raise RecipeError(path, "set max or min")
        if self.max is not None and self.min is not None and self.min > self.max:
            raise RecipeError(f"{path}.min", f"must be <= max ({self.max}), got {self.min}")
        if self.latency_device is not None and self.metric != LATENCY:
            raise RecipeError(f"{path}.latency_device", f"applies to {LATENCY} only, not {self.metric}")
        if self.lut_path is not None and self.latency_device is None:
            raise RecipeError(f"{path}.lut_path", "needs latency_device (the device the LUT was timed on)")

    @property
    def key(self) -> str:
        return self.metric if self.latency_device is None else device_metric(self.metric, self.latency_device)

    def ok(self, metrics: dict[str, float]) -> bool:
        """Whether ``metrics`` meet the bound; a missing metric is a ``MissingMetricError``."""
        value = metrics.get(self.key)
        if value is None:
            raise MissingMetricError(f"constraint on {self.key!r}: the result has no such metric "
                                     f"(it has: {', '.join(sorted(metrics)) or 'none'})")
        return (self.max is None or value <= self.max) and (self.min is None or value >= self.min)


class MissingMetricError(RuntimeError):
    """A result lacks a metric a constraint bounds (an evaluator broke its ``metrics()`` promise)."""


def satisfied(constraints: Sequence[Constraint], metrics: dict[str, float]) -> bool:
    return all(c.ok(metrics) for c in constraints)


def check_metrics(constraints: Sequence[Constraint], available: Collection[str], path: str = "constraints") -> None:
    """``RecipeError`` naming ``constraints[i].metric`` for the first constraint whose metric is not
    ``available`` (what the recipe's evaluator and cost models produce)."""
    for i, c in enumerate(constraints):
        if c.key not in available:
            where = f" on device {c.latency_device!r}" if c.latency_device else ""
            raise RecipeError(f"{path}[{i}].metric", f"nothing in this recipe produces {c.metric!r}{where}; "
                              f"available: {', '.join(sorted(available))}")


def feasibility(constraints: Sequence[Constraint], cost_fn: Callable[[object], dict[str, float]],
                cost_metrics: Collection[str]):
    """A predicate ``arch -> bool`` checking, on the cost model ``cost_fn``, the constraints on the
    ``cost_metrics`` it produces; ``None`` when none of them is on such a metric."""
    checkable = [c for c in constraints if c.key in cost_metrics]
    if not checkable:
        return None
    return lambda arch: satisfied(checkable, cost_fn(arch))
