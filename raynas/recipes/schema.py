"""The recipe schema: typed dataclasses a YAML recipe loads into (see ``recipes/*.yaml`` for examples).

``space``, ``evaluator`` and ``strategy`` are components: ``name`` picks a registered implementation and
the remaining keys are validated against that implementation's own ``Config`` dataclass.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal

from raynas.errors import RecipeError
from raynas.evaluators import EVALUATORS
from raynas.registry import Registry
from raynas.space import SPACES
from raynas.strategies import STRATEGIES
from raynas.strategies.constraints import Constraint
from raynas.typed import bounded, from_dict, to_dict

TUNE, SIMULATE = "tune", "simulate"
ASHA, HYPERBAND = "asha", "hyperband"
AUTO = "auto"  # backend.candidates_per_trial: sized from the measured evaluation time
COMPONENTS = ("space", "evaluator", "strategy")  # the recipe sections naming a registered component


@dataclasses.dataclass
class Component:
    """A registered component chosen by ``name`` with its typed ``config``."""

    name: str
    config: Any
    registry: ClassVar[Registry]

    @classmethod
    def parse(cls, value: Any, path: str) -> "Component":
        registry = cls.registry
        if isinstance(value, str):
            value = {"name": value}
        if not isinstance(value, dict):
            raise RecipeError(path, f"must be a mapping with a 'name', got {value!r}")
        if "name" not in value:
            raise RecipeError(f"{path}.name", f"is required; known: {', '.join(registry.names())}")
        name = value["name"]
        if not isinstance(name, str) or name not in registry:
            raise RecipeError(f"{path}.name", f"unknown {registry.kind} {name!r}; "
                              f"known: {', '.join(registry.names())}")
        params = {k: v for k, v in value.items() if k != "name"}
        return cls(name, from_dict(registry.get(name).Config, params, path))

    @property
    def impl(self) -> type:
        return self.registry.get(self.name)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **to_dict(self.config)}


class SpaceSpec(Component):
    registry = SPACES


class EvaluatorSpec(Component):
    registry = EVALUATORS


class StrategySpec(Component):
    registry = STRATEGIES


@dataclasses.dataclass
class BudgetSpec:
    """When the search stops: whichever limit is reached first (at least one of ``sim_seconds`` and
    ``max_candidates`` is required). ``max_failed``: the search stops, status FAILED, once more than this
    many candidates have failed (after ``backend.max_failures`` retries each); 0 stops at the first."""

    sim_seconds: float | None = bounded(None, gt=0)  # on the search clock (simulated for tabular)
    max_candidates: int | None = bounded(None, gt=0)
    max_failed: int = bounded(10, ge=0)

    def validate(self, path: str) -> None:
        if self.sim_seconds is None and self.max_candidates is None:
            raise RecipeError(path, "set sim_seconds or max_candidates (or both)")


@dataclasses.dataclass
class SchedulerSpec:
    """A Ray Tune trial scheduler stopping candidates early, over their epochs (``raynas.runtime.epochs``):
    ``asha`` (``ASHAScheduler``, one bracket) or ``hyperband`` (asynchronous Hyperband: every bracket);
    at each rung a candidate goes on only if it is in the top ``1 / reduction_factor`` there."""

    name: Literal["asha", "hyperband"] = ASHA
    max_t: int | None = bounded(None, gt=0)  # epochs a candidate may run; default: the evaluator's epochs
    grace_period: int = bounded(1, gt=0)  # asha: epochs before a candidate can be stopped
    reduction_factor: float = bounded(3.0, gt=1)


@dataclasses.dataclass
class BackendSpec:
    """How trials run: ``tune`` (Ray Tune Tuner) or ``simulate`` (in-process, virtual workers)."""

    name: Literal["tune", "simulate"] = TUNE
    workers: int = bounded(1, gt=0, le=100_000)  # virtual workers are allocated up front
    # a number, or "auto": sized from the measured evaluation time (raynas.runtime.batching)
    candidates_per_trial: int | Literal["auto"] = bounded(AUTO, gt=0)
    cpus_per_worker: float = bounded(1.0, gt=0)
    gpus_per_worker: float = bounded(0.0, ge=0)
    storage_path: str | None = None
    max_failures: int = bounded(0, ge=0)  # retries of a failed trial (Tune's FailureConfig; simulate: re-run)
    # a Tune trial scheduler stopping bad candidates early (evaluators reporting per epoch: ``scratch``)
    scheduler: SchedulerSpec | None = None


@dataclasses.dataclass
class RaySpec:
    """Where the search runs. A resource bundle that fits no node of the cluster is an error at start,
    unless ``autoscaling`` (the cluster adds nodes on demand: Ray's autoscaler, KubeRay)."""

    address: str | None = None  # None: start a local Ray; "auto" or "ray://…": join a cluster
    num_cpus: int | None = bounded(None, gt=0)
    autoscaling: bool = False


@dataclasses.dataclass
class TrackingSpec:
    """MLflow tracking of a search (see ``raynas.tracking``)."""

    tracking_uri: str | None = None  # default: sqlite:///<cwd>/mlflow.db
    experiment: str | None = None  # default: the recipe's name
    batch_size: int = bounded(200, gt=0)  # candidates per log_batch flush
    flush_interval_s: float = bounded(5.0, gt=0)  # ... or at least this often
    run_per_candidate: bool = False  # also a nested child run per candidate (slow: for small searches)
    plots: bool = True  # plots/progress.png and plots/pareto.png at the end
    table_interval_s: float = bounded(30.0, gt=0)  # rewrite candidates.parquet at most this often
    spool_dir: str | None = None  # default: <cwd>/.raynas/spool (kept while the server is unreachable)


@dataclasses.dataclass
class Recipe:
    name: str
    space: SpaceSpec
    evaluator: EvaluatorSpec
    strategy: StrategySpec
    budget: BudgetSpec
    seed: int = bounded(0, ge=0)
    description: str = ""
    constraints: list[Constraint] = dataclasses.field(default_factory=list)
    backend: BackendSpec = dataclasses.field(default_factory=BackendSpec)
    ray: RaySpec = dataclasses.field(default_factory=RaySpec)
    tracking: TrackingSpec = dataclasses.field(default_factory=TrackingSpec)
    # modules imported before the components are resolved (a user's spaces, evaluators, strategies…)
    plugins: list[str] = dataclasses.field(default_factory=list)

    def validate(self, path: str) -> None:
        if not self.name.strip():
            raise RecipeError("name", "must not be empty")
        needs = getattr(self.evaluator.impl, "space_names", None)
        if needs and self.space.name not in needs:
            raise RecipeError("evaluator.name", f"{self.evaluator.name!r} works with space "
                              f"{', '.join(needs)}, not {self.space.name!r}")

    def to_dict(self) -> dict[str, Any]:
        out = to_dict(self)
        for section in COMPONENTS:
            out[section] = getattr(self, section).to_dict()
        return out


def parse_recipe(data: Any) -> Recipe:
    return from_dict(Recipe, data, "")
