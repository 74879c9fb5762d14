"""``build_search(recipe)``: turn a validated recipe into a runnable ``Search``.

Building starts nothing (``raynas validate`` builds to check a recipe's components); ``Search.run``
connects to Ray (tune backend), calls ``evaluator.prepare()`` once, here in the driver, then runs the
backend."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

from raynas.evaluators.base import Evaluator
from raynas.evaluators.cost import CostEvaluator
from raynas.metrics import FAILED, KILLED, LATENCY, device_metric
from raynas.ray_env import ensure_ray
from raynas.recipes.schema import SIMULATE, Recipe
from raynas.runtime.backends import run_simulated, run_tune
from raynas.runtime.driver import SearchDriver
from raynas.runtime.records import INFO_METRIC, INFO_MODE, INFO_RECIPE, SearchListener, SearchSummary
from raynas.space.base import SearchSpace
from raynas.strategies.base import Strategy
from raynas.strategies.constraints import feasibility


@dataclasses.dataclass
class Search:
    recipe: Recipe
    space: SearchSpace
    evaluator: Evaluator
    strategy: Strategy
    driver: SearchDriver

    def run(self, info: dict[str, Any] | None = None) -> SearchSummary:
        """Run to the budget; listeners get ``on_end`` even when the run fails midway."""
        r = self.recipe
        self.driver.start({INFO_RECIPE: r, INFO_METRIC: self.driver.metric, INFO_MODE: self.driver.mode,
                           **(info or {})})
        try:
            if r.backend.name == SIMULATE:
                self.evaluator.prepare()
                run_simulated(self.driver, self.evaluator)
            else:
                ensure_ray(r.ray.address, r.ray.num_cpus)
                self.evaluator.prepare()
                run_tune(self.driver, self.evaluator, r.backend, name=r.name)
        except KeyboardInterrupt:
            self.driver.summary.status = KILLED
            raise
        except BaseException:
            self.driver.summary.status = FAILED
            raise
        finally:
            summary = self.driver.finish()
        return summary


def cost_model(space: SearchSpace, recipe: Recipe, config_path: str = "evaluator", **overrides: Any) -> CostEvaluator:
    """The cost evaluator matching the recipe's evaluator (same dataset, latency device, data path),
    with ``overrides`` of its config fields."""
    ev = recipe.evaluator.config
    fields = {f.name for f in dataclasses.fields(CostEvaluator.Config)}
    shared = {k: getattr(ev, k) for k in fields if hasattr(ev, k)}
    return CostEvaluator(space, CostEvaluator.Config(**{**shared, **overrides}), config_path=config_path)


def device_costs(space: SearchSpace, recipe: Recipe) -> Callable[[Any], dict[str, float]] | None:
    """``arch -> {"latency_ms.<device>": ms}`` for every device a recipe constraint names (None when
    none does); an unknown device or a missing LUT is a ``RecipeError`` naming the constraint."""
    models: dict[str, CostEvaluator] = {}
    for i, c in enumerate(recipe.constraints):
        if c.latency_device is not None and c.latency_device not in models:
            models[c.latency_device] = cost_model(space, recipe, f"constraints[{i}]", latency_device=c.latency_device,
                                                  lut_path=c.lut_path)
    if not models:
        return None
    return lambda arch: {device_metric(LATENCY, d): m.costs(arch)[LATENCY] for d, m in models.items()}


def constraint_costs(space: SearchSpace, recipe: Recipe,
                     devices: Callable[[Any], dict[str, float]] | None) -> Callable[[Any], dict[str, float]]:
    """Every cost a constraint may read: the evaluator's cost model plus ``devices`` (``device_costs``)."""
    base = cost_model(space, recipe).costs
    return base if devices is None else (lambda arch: {**base(arch), **devices(arch)})


def proxy_scorer(space: SearchSpace, proxy: str):
    """``arch -> proxy score`` from the zero-cost evaluator (imports torch on first use only)."""
    from raynas.evaluators.zero_cost import ZeroCostEvaluator

    evaluator = ZeroCostEvaluator(space, ZeroCostEvaluator.Config(proxies=[proxy]))
    return lambda arch: evaluator.scores(arch)[proxy]


def _strategy(recipe: Recipe, space: SearchSpace, evaluator: Evaluator,
              devices: Callable[[Any], dict[str, float]] | None, scorer: Callable[[Any], float] | None) -> Strategy:
    cls, config = recipe.strategy.impl, recipe.strategy.config
    metric, mode = evaluator.objective()
    feasible = (feasibility(recipe.constraints, constraint_costs(space, recipe, devices))
                if recipe.constraints else None)
    proxy = cls.scorer_proxy(config)
    if proxy is not None and scorer is None:
        scorer = proxy_scorer(space, proxy)
    return cls(space, config, seed=recipe.seed, metric=metric, mode=mode, feasible=feasible,
               scorer=scorer if proxy is not None else None)


def build_search(recipe: Recipe, listeners: Sequence[SearchListener] = (),
                 scorer: Callable[[Any], float] | None = None) -> Search:
    """The search a recipe describes; nothing starts. The strategy optimises the evaluator's
    ``objective()`` and gets its collaborators here: ``feasible`` from the constraints' cost models,
    and, when it declares a ``scorer_proxy``, ``scorer`` (default: that proxy from the zero-cost
    evaluator; pass one to use e.g. precomputed values)."""
    space = recipe.space.impl(recipe.space.config)
    evaluator = recipe.evaluator.impl(space, recipe.evaluator.config)
    devices = device_costs(space, recipe)  # one set of per-device cost models: feasibility and records
    strategy = _strategy(recipe, space, evaluator, devices, scorer)
    driver = SearchDriver(strategy, sim_budget_s=recipe.budget.sim_seconds,
                          max_candidates=recipe.budget.max_candidates, workers=recipe.backend.workers,
                          candidates_per_trial=recipe.backend.candidates_per_trial,
                          listeners=listeners, reference=evaluator.reference(),
                          constraints=recipe.constraints, extra_metrics=devices)
    return Search(recipe, space, evaluator, strategy, driver)
