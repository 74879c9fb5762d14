"""The ``Evaluator`` interface: ``evaluate(archs) -> list[Result]`` (public) wraps ``_evaluate`` (hook).

Contract:
  * ``evaluate`` validates every arch against the space (``ValueError`` naming the arch), times the call,
    and returns one ``Result`` per arch, in order.
  * ``Result.metrics`` is what a strategy may see (validation accuracy, costs); ``Result.hidden`` is for
    reporting only (test accuracy) and never reaches a strategy.
  * ``Result.tags`` carries string facts about how the result was produced (e.g. the supernet
    weights version), recorded as lineage.
  * ``Result.cost_s`` is the candidate's cost on the search clock: wall seconds, or simulated seconds
    when ``simulated`` is true (tabular benchmarks).
  * ``objective()`` names the metric a search optimises by default and its mode (``valid_acc``, max).
  * ``metrics()`` names the visible metrics every ``Result.metrics`` holds (no more, no fewer), known
    from the config before anything is evaluated: recipes check constraints and objectives against it.
  * ``resources()`` lists the Ray resource bundles evaluation asks for (``raynas.ray_env.Demand``, each
    naming its recipe field); the runtime checks them against the cluster before ``prepare()``.
    Default: none (the evaluator runs inside the backend's trials).
  * ``prepare()`` acquires what evaluation needs (actors, weights) once, in the driver, before the search;
    ``close()`` releases it. Both default to nothing; ``evaluate`` works unprepared too.
  * Evaluators are picklable, and pickling has no side effects: the Tune backend ships them to workers
    with ``tune.with_parameters``.
Every registered evaluator passes ``raynas.testing.evaluator_contract``.
"""
from __future__ import annotations

import abc
import dataclasses
import time
from typing import Any, Sequence

from raynas.metrics import MAX, VALID_ACC
from raynas.ray_env import Demand
from raynas.registry import Registry
from raynas.space.base import Arch, SearchSpace

EVALUATORS: Registry["Evaluator"] = Registry("evaluator", group="raynas.evaluators")


@dataclasses.dataclass(frozen=True)
class Result:
    """One evaluation: visible ``metrics``, report-only ``hidden`` metrics, and its clock cost."""

    metrics: dict[str, float]
    cost_s: float
    hidden: dict[str, float] = dataclasses.field(default_factory=dict)
    evaluator: str = ""
    tags: dict[str, str] = dataclasses.field(default_factory=dict)  # e.g. {"weights_version": "…"}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Result":
        return cls(**d)


class Evaluator(abc.ABC):
    """Scores architectures of one space. Subclasses implement ``_evaluate`` and declare ``Config``."""

    simulated: bool = False
    version: str = "1"

    @dataclasses.dataclass
    class Config:
        pass

    def __init__(self, space: SearchSpace, config: Any = None, *, storage_path: str | None = None) -> None:
        """``storage_path``: where Tune experiments the evaluator runs itself (PBT, split trees) are
        stored, as ``raynas.storage.resolve`` takes it — the recipe's ``backend.storage_path``."""
        self.space = space
        self.config = config if config is not None else self.Config()
        self.storage_path = storage_path

    def objective(self) -> tuple[str, str]:
        """``(metric, mode)`` a search optimises unless told otherwise."""
        return VALID_ACC, MAX

    @abc.abstractmethod
    def metrics(self) -> tuple[str, ...]:
        """The visible metrics every result holds (see the module docstring)."""

    def resources(self) -> list[Demand]:
        """The Ray resource bundles evaluation asks for beyond the backend's trials (default: none)."""
        return []

    def prepare(self) -> None:
        """Acquire what evaluation needs, once, in the driver (default: nothing)."""

    def close(self) -> None:
        """Release what ``prepare`` acquired (default: nothing)."""

    def training_record(self) -> dict[str, Any] | None:
        """After ``prepare``: JSON data on how the evaluator's weights were trained that tracking
        records beside the search (a few-shot split tree: ``{"kind": "few_shot", "nodes": …}``);
        default None."""
        return None

    @property
    def id(self) -> str:
        return f"{getattr(self, 'registry_name', type(self).__name__)}@{self.version}"

    def evaluate(self, archs: Sequence[Arch]) -> list[Result]:
        for arch in archs:
            if not self.space.contains(arch):
                raise ValueError(f"{arch!r} is not an arch of space {self.space.name}")
        start = time.perf_counter()
        results = self._evaluate(list(archs))
        if len(results) != len(archs):
            raise RuntimeError(f"{self.id} returned {len(results)} results for {len(archs)} archs")
        if not self.simulated:
            per = (time.perf_counter() - start) / max(1, len(archs))
            results = [dataclasses.replace(r, cost_s=r.cost_s or per) for r in results]
        return [dataclasses.replace(r, evaluator=self.id) for r in results]

    @abc.abstractmethod
    def _evaluate(self, archs: list[Arch]) -> list[Result]: ...

    def reference(self) -> dict[str, float]:
        """Known reference figures (e.g. the benchmark's optimum test accuracy); empty if none."""
        return {}


class EpochRun(abc.ABC):
    """One candidate training epoch by epoch (``EpochEvaluator.start``)."""

    epochs_done: int

    @abc.abstractmethod
    def run_epoch(self) -> Result:
        """Train one more epoch; the candidate's result after it (``cost_s``: seconds of all its epochs
        so far, restored ones included)."""

    @abc.abstractmethod
    def save(self, directory: str) -> None:
        """Write everything needed to continue into the (existing, empty) ``directory``."""


class EpochEvaluator(Evaluator):
    """An evaluator whose candidates train for epochs and can be judged after each one.

    Contract (besides ``Evaluator``'s): ``max_epochs()`` epochs make a full evaluation; ``start(arch,
    directory)`` begins a run, or continues the one ``EpochRun.save`` wrote to ``directory``; a run's
    ``Result`` after epoch ``e`` has ``metrics[EPOCHS] == e``. On the tune backend each candidate is a
    trial that reports after every epoch with a checkpoint, so a Tune scheduler (``backend.scheduler``)
    may stop it early — the driver then records its last result — and a trial that failed resumes
    from its last epoch. ``evaluate`` (the simulate backend, or a plain call) trains every epoch."""

    @abc.abstractmethod
    def max_epochs(self) -> int: ...

    def start(self, arch: Arch, directory: str | None = None) -> EpochRun:
        if not self.space.contains(arch):
            raise ValueError(f"{arch!r} is not an arch of space {self.space.name}")
        return self._start(arch, directory)

    @abc.abstractmethod
    def _start(self, arch: Arch, directory: str | None) -> EpochRun: ...

    def _evaluate(self, archs: list[Arch]) -> list[Result]:
        results = []
        for arch in archs:
            run = self.start(arch)
            result = run.run_epoch()
            while run.epochs_done < self.max_epochs():
                result = run.run_epoch()
            results.append(result)
        return results
