"""What a search produces: one ``CandidateRecord`` per evaluated candidate, one ``FailedCandidate`` per
candidate whose evaluation failed, and a ``SearchSummary``."""
from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from raynas.metrics import (
    FINISHED,
    NUM_CANDIDATES,
    NUM_FAILED,
    NUM_OVER_BUDGET,
    OPTIMUM_TEST_ACC,
    REGRET_TEST_ACC,
    SIM_TIME_S,
    TEST_ACC,
    VALID_ACC,
    WALL_TIME_S,
    best,
)


@dataclasses.dataclass(frozen=True)
class CandidateRecord:
    """One evaluated candidate with its metrics, clock times and lineage."""

    index: int  # 0-based, in the order the search received results
    trial_id: str
    candidate_id: str
    arch: str
    canonical: str
    parent: str | None
    variation: str | None
    generation: int
    metrics: dict[str, float]  # visible to the strategy
    hidden: dict[str, float]  # report-only (e.g. test accuracy)
    cost_s: float
    sim_start_s: float
    sim_end_s: float
    wall_s: float  # seconds since the search started, when the result arrived
    worker: int
    evaluator: str
    tags: dict[str, str] = dataclasses.field(default_factory=dict)  # from Result.tags
    feasible: bool = True  # meets the recipe's constraints (measured metrics)

    def row(self) -> dict[str, Any]:
        """A flat row for tables: metrics keep their names, hidden ones too (no collisions by contract)."""
        base = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name not in ("metrics", "hidden", "tags")}
        return {**base, **self.tags, **self.metrics, **self.hidden}


@dataclasses.dataclass(frozen=True)
class FailedCandidate:
    """A candidate whose evaluation failed (after the backend's retries): who it was and why."""

    trial_id: str
    candidate_id: str
    arch: str
    parent: str | None
    variation: str | None
    generation: int
    error: str  # the error's first line, e.g. "RuntimeError: CUDA out of memory"
    wall_s: float  # seconds since the search started, when the failure was known


@dataclasses.dataclass
class SearchSummary:
    num_candidates: int = 0
    num_failed: int = 0
    num_over_budget: int = 0
    sim_time_s: float = 0.0
    wall_time_s: float = 0.0
    best: CandidateRecord | None = None
    reference: dict[str, float] = dataclasses.field(default_factory=dict)
    run_id: str | None = None
    status: str = FINISHED  # MLflow run status: FINISHED, FAILED or KILLED (raynas.metrics)
    strategy_metrics: dict[str, float] = dataclasses.field(default_factory=dict)  # Strategy.report()
    metric: str = VALID_ACC  # the metric the search optimised (what "best" means)
    failures: list[FailedCandidate] = dataclasses.field(default_factory=list)
    stop_reason: str | None = None  # why the search stopped before its budget (then status is FAILED)
    training: dict[str, Any] | None = None  # the evaluator's training_record() (e.g. a few-shot split tree)

    def metrics(self, metric: str | None = None) -> dict[str, float]:
        """Summary metrics; ``best_<metric>`` (default: the search's own metric) and the best
        candidate's hidden metrics when there is a best."""
        metric = metric or self.metric
        out = {NUM_CANDIDATES: float(self.num_candidates), NUM_FAILED: float(self.num_failed),
               NUM_OVER_BUDGET: float(self.num_over_budget),
               SIM_TIME_S: self.sim_time_s, WALL_TIME_S: self.wall_time_s, **self.strategy_metrics}
        if self.best is not None:
            out[best(metric)] = self.best.metrics[metric]
            for key, value in self.best.hidden.items():
                out[best(key)] = value
            optimum = self.reference.get(OPTIMUM_TEST_ACC)
            if optimum is not None and TEST_ACC in self.best.hidden:
                out[REGRET_TEST_ACC] = optimum - self.best.hidden[TEST_ACC]
        return out


FAILURE_HOOK = "on_failure"  # the optional listener method told of each FailedCandidate
INFO_RECIPE, INFO_METRIC, INFO_MODE = "recipe", "metric", "mode"  # what on_start's info always holds
SEARCH_INFO = (INFO_RECIPE, INFO_METRIC, INFO_MODE)
TUNE_EXPERIMENT = "raynas.tune_experiment"  # on_start info (tune backend): where the Tune experiment lives


class SearchListener(Protocol):
    """Receives a search's events (MLflow tracker, console progress, tests). ``on_start``'s info holds
    the ``Recipe`` (``INFO_RECIPE``), the metric the search optimises and its mode (``INFO_METRIC``,
    ``INFO_MODE``), and whatever the caller of ``Search.run`` added. A listener may also define
    ``on_failure(failed: FailedCandidate)`` (optional: ``FAILURE_HOOK``) to hear of failed candidates;
    the summary lists them either way."""

    def on_start(self, info: dict[str, Any]) -> None: ...

    def on_candidate(self, record: CandidateRecord) -> None: ...

    def on_end(self, summary: SearchSummary) -> None: ...
