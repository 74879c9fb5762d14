"""``build_search(recipe)``: turn a validated recipe into a runnable ``Search``.

Building starts nothing (``raynas validate`` builds to check a recipe's components); ``Search.run``
connects to Ray (tune backend, or an evaluator with Ray resources of its own), checks that every
resource bundle the recipe asks for fits a node of the cluster (a ``RecipeError`` naming the field
otherwise, unless ``ray.autoscaling``), calls ``evaluator.prepare()`` once, here in the driver, then
runs the backend."""
from __future__ import annotations

import dataclasses
import time
import uuid
from typing import Any, Callable, Sequence

from raynas.errors import RecipeError
from raynas.evaluators.base import EpochEvaluator, Evaluator
from raynas.evaluators.cost import NB201_REF, CostEvaluator
from raynas.metrics import FAILED, KILLED, LATENCY, device_metric
from raynas.ray_env import RAY_CPU, RAY_GPU, Demand, check_resources, ensure_ray
from raynas.recipes.schema import AUTO, SIMULATE, BackendSpec, Recipe
from raynas.runtime.backends import experiment_path, run_simulated, run_tune
from raynas.runtime.batching import Batching
from raynas.runtime.driver import SearchDriver
from raynas.runtime.epochs import check_scheduler
from raynas.runtime.records import (
    INFO_METRIC,
    INFO_MODE,
    INFO_RECIPE,
    TUNE_EXPERIMENT,
    SearchListener,
    SearchSummary,
)
from raynas.space.base import SearchSpace
from raynas.strategies.base import Strategy
from raynas.strategies.constraints import check_metrics, feasibility


def new_experiment_name(recipe_name: str) -> str:
    """A Tune experiment name of its own for each run: ``<recipe name>-<YYYYmmdd-HHMMSS>-<6 hex>``."""
    return f"{recipe_name}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


@dataclasses.dataclass
class Search:
    recipe: Recipe
    space: SearchSpace
    evaluator: Evaluator
    strategy: Strategy
    driver: SearchDriver

    def run(self, info: dict[str, Any] | None = None, *, experiment: str | None = None,
            restore: bool = False) -> SearchSummary:
        """Run to the budget; listeners get ``on_end`` even when the run fails midway. The tune backend
        runs the Tune experiment ``experiment`` (default: ``<recipe name>-<time>-<random>``, new for each
        run) under ``backend.storage_path``; listeners find its location in ``on_start``'s info
        (``TUNE_EXPERIMENT``). ``restore``: continue that experiment after its driver died (``raynas
        resume``); the driver's state then comes from the experiment, not from the start."""
        r = self.recipe
        tuned = r.backend.name != SIMULATE
        experiment = experiment or new_experiment_name(r.name)
        if restore and not tuned:
            raise RecipeError("backend.name", "only a tune backend search can be resumed (a simulated one "
                              "re-runs in seconds: run it again)")
        info = {**(info or {}), **({TUNE_EXPERIMENT: experiment_path(r.backend, experiment)} if tuned else {})}
        demands = self.demands()
        if demands:  # the tune backend, or an evaluator with Ray actors of its own: before anything starts
            ensure_ray(r.ray.address, r.ray.num_cpus)
            if not r.ray.autoscaling:
                check_resources(demands)
        self.driver.start({INFO_RECIPE: r, INFO_METRIC: self.driver.metric, INFO_MODE: self.driver.mode, **info})
        try:
            self.evaluator.prepare()
            self.driver.summary.training = self.evaluator.training_record()
            if not tuned:
                run_simulated(self.driver, self.evaluator, r.backend.max_failures)
            else:
                run_tune(self.driver, self.evaluator, r.backend, name=experiment, restore=restore)
        except KeyboardInterrupt:
            self.driver.summary.status = KILLED
            raise
        except BaseException:
            self.driver.summary.status = FAILED
            raise
        finally:
            summary = self.driver.finish()
        return summary

    def demands(self) -> list[Demand]:
        """The Ray resource bundles this search asks for: each Tune trial (tune backend) and the
        evaluator's own (``Evaluator.resources``)."""
        b = self.recipe.backend
        trials = [] if b.name == SIMULATE else [
            Demand("each Tune trial", {RAY_CPU: b.cpus_per_worker, RAY_GPU: b.gpus_per_worker},
                   {RAY_CPU: "backend.cpus_per_worker", RAY_GPU: "backend.gpus_per_worker"})]
        return trials + self.evaluator.resources()


def cost_model(space: SearchSpace, recipe: Recipe, config_path: str = "evaluator", **overrides: Any) -> CostEvaluator:
    """The cost evaluator matching the recipe's evaluator (same dataset when NB201 has it, latency
    device, data path), with ``overrides`` of its config fields."""
    ev = recipe.evaluator.config
    fields = {f.name for f in dataclasses.fields(CostEvaluator.Config)}
    shared = {k: getattr(ev, k) for k in fields if hasattr(ev, k)}
    if shared.get("dataset") not in NB201_REF:  # e.g. zero-cost proxies on digits: NB201 counts CIFAR-10
        shared.pop("dataset", None)
    return CostEvaluator(space, CostEvaluator.Config(**{**shared, **overrides}), config_path=config_path)


@dataclasses.dataclass(frozen=True)
class ConstraintCosts:
    """The cost side of a recipe's constraints: ``costs(arch)`` from the evaluator's cost model plus
    ``latency_ms.<device>`` for every device a constraint names; ``metrics`` the names it produces."""

    costs: Callable[[Any], dict[str, float]]
    metrics: frozenset[str]


def constraint_costs(space: SearchSpace, recipe: Recipe) -> ConstraintCosts:
    """The recipe's cost models; an unknown device or a missing LUT is a ``RecipeError`` naming the
    constraint."""
    base = cost_model(space, recipe)
    devices: dict[str, CostEvaluator] = {}
    for i, c in enumerate(recipe.constraints):
        if c.latency_device is not None and c.latency_device not in devices:
            devices[c.latency_device] = cost_model(space, recipe, f"constraints[{i}]",
                                                   latency_device=c.latency_device, lut_path=c.lut_path)

    def costs(arch: Any) -> dict[str, float]:
        out = base.costs(arch)
        out.update({device_metric(LATENCY, d): m.costs(arch)[LATENCY] for d, m in devices.items()})
        return out

    names = {*base.metrics(), *(device_metric(LATENCY, d) for d in devices)}
    return ConstraintCosts(costs, frozenset(names))


def constraint_metrics(space: SearchSpace, recipe: Recipe, evaluator: Evaluator):
    """``(feasible, extra_metrics)`` for a recipe's constraints, after checking that each one's metric
    is produced by the evaluator or a cost model (``RecipeError`` naming ``constraints[i].metric``):
    ``feasible(arch)`` checks the cost-model constraints before evaluation; ``extra_metrics(arch)``
    adds to every record the constrained cost metrics the evaluator does not report (per-device
    latencies, FLOPs for a zero-cost search …). Both ``None`` without constraints."""
    if not recipe.constraints:
        return None, None
    cost = constraint_costs(space, recipe)
    produced = set(evaluator.metrics())
    check_metrics(recipe.constraints, produced | cost.metrics)
    extra = {c.key for c in recipe.constraints} - produced
    feasible = feasibility(recipe.constraints, cost.costs, cost.metrics)
    if not extra:
        return feasible, None
    return feasible, lambda arch: {k: v for k, v in cost.costs(arch).items() if k in extra}


def proxy_scorer(space: SearchSpace, proxy: str):
    """``arch -> proxy score`` from the zero-cost evaluator (imports torch on first use only)."""
    from raynas.evaluators.zero_cost import ZeroCostEvaluator

    evaluator = ZeroCostEvaluator(space, ZeroCostEvaluator.Config(proxies=[proxy]))
    return lambda arch: evaluator.scores(arch)[proxy]


def _strategy(recipe: Recipe, space: SearchSpace, evaluator: Evaluator, feasible: Callable[[Any], bool] | None,
              scorer: Callable[[Any], float] | None) -> Strategy:
    cls, config = recipe.strategy.impl, recipe.strategy.config
    metric, mode = evaluator.objective()
    reported = set(evaluator.metrics())
    for field, name in cls.metrics_read(config).items():
        if name not in reported:
            raise RecipeError(f"strategy.{field}", f"evaluator {recipe.evaluator.name!r} reports no {name!r}; "
                              f"it reports: {', '.join(sorted(reported))}")
    proxy = cls.scorer_proxy(config)
    if proxy is not None and scorer is None:
        scorer = proxy_scorer(space, proxy)
    return cls(space, config, seed=recipe.seed, metric=metric, mode=mode, feasible=feasible,
               scorer=scorer if proxy is not None else None)


def batching(backend: BackendSpec, evaluator: Evaluator | None = None) -> Batching:
    """The batching of ``backend.candidates_per_trial``; ``auto`` on the simulate backend is one
    candidate per trial (in-process trials cost nothing to amortise), and so is every trial of an
    ``EpochEvaluator`` on the tune backend (each candidate reports its epochs: ``runtime.epochs``;
    another fixed number is a ``RecipeError``)."""
    per_trial = backend.candidates_per_trial
    if isinstance(evaluator, EpochEvaluator) and backend.name != SIMULATE:
        if per_trial not in (AUTO, 1):
            raise RecipeError("backend.candidates_per_trial", f"is {per_trial}, but an evaluator reporting per "
                              "epoch trains one candidate per trial: use auto or 1")
        return Batching(1)
    if backend.name == SIMULATE and per_trial == AUTO:
        return Batching(1)
    return Batching.of(per_trial)


def build_search(recipe: Recipe, listeners: Sequence[SearchListener] = (),
                 scorer: Callable[[Any], float] | None = None) -> Search:
    """The search a recipe describes; nothing starts. The strategy optimises the evaluator's
    ``objective()`` and gets its collaborators here: ``feasible`` from the constraints' cost models,
    and, when it declares a ``scorer_proxy``, ``scorer`` (default: that proxy from the zero-cost
    evaluator; pass one to use e.g. precomputed values)."""
    space = recipe.space.impl(recipe.space.config)
    evaluator = recipe.evaluator.impl(space, recipe.evaluator.config, storage_path=recipe.backend.storage_path)
    check_scheduler(recipe.backend, evaluator, recipe.evaluator.name)
    feasible, extra = constraint_metrics(space, recipe, evaluator)
    strategy = _strategy(recipe, space, evaluator, feasible, scorer)
    tuned = recipe.backend.name != SIMULATE
    driver = SearchDriver(strategy, sim_budget_s=recipe.budget.sim_seconds,
                          max_candidates=recipe.budget.max_candidates, workers=recipe.backend.workers,
                          batching=batching(recipe.backend, evaluator),
                          listeners=listeners, reference=evaluator.reference(),
                          constraints=recipe.constraints, extra_metrics=extra,
                          max_failed=recipe.budget.max_failed,
                          # Tune's retries miss some trials lost with their node (see runtime.lost).
                          requeue_lost=recipe.backend.max_failures if tuned else 0)
    return Search(recipe, space, evaluator, strategy, driver)
