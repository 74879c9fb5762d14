"""NSGA-II, MAP-Elites and predictor-guided evolution on the real NB201 table (simulator backend)."""
from __future__ import annotations

import re

import numpy as np
import pytest

from raynas.runtime import build_search
from raynas.strategies.pareto import dominates
from tests.runtime.helpers import Collector, recipe


def search(nb201_path, strategy, *overrides):
    col = Collector()
    r = recipe(nb201_path, f"strategy={strategy}", "evaluator.latency_device=pixel3", *overrides)
    search = build_search(r, [col])
    return search, search.run(), col


def test_nsga2_front_is_non_dominated_and_beats_random_hypervolume(nb201_path):
    hv = {}
    for name in ("nsga2", "random"):
        vals = []
        for seed in range(3):
            s, summary, col = search(nb201_path, "{name: nsga2}" if name == "nsga2" else
                                     "{name: nsga2, population_size: 100000}", f"seed={seed}",
                                     "budget.sim_seconds=24000")
            vals.append(summary.strategy_metrics["hypervolume"])
        hv[name] = np.mean(vals)
    # population_size larger than the budget = never leaves the random phase: the random baseline
    assert hv["nsga2"] > hv["random"]
    s, summary, col = search(nb201_path, "{name: nsga2}")
    front = s.strategy.front()
    pts = [np.array([o.metrics["valid_acc"], -o.metrics["flops_m"]]) for o in s.strategy.history]
    for o in front:
        p = np.array([o.metrics["valid_acc"], -o.metrics["flops_m"]])
        assert not any(dominates(q, p) for q in pts)
    assert summary.strategy_metrics["pareto_front_size"] == len(front) > 2
    assert len(s.strategy.population) == 20


def test_nsga2_objectives_are_validated(nb201_path):
    from raynas.errors import RecipeError

    with pytest.raises(RecipeError, match=r"^strategy.reference: needs one value per objective"):
        recipe(nb201_path, "strategy={name: nsga2, reference: [1, 2, 3]}")
    with pytest.raises(RecipeError, match=r"^strategy.objectives\[1\].mode: must be one of max, min"):
        recipe(nb201_path, "strategy={name: nsga2, objectives: [{metric: valid_acc}, {metric: flops_m, mode: up}]}")


@pytest.mark.parametrize("strategy,field", [
    ("{name: nsga2, objectives: [{metric: valid_acc}, {metric: latncy_ms, mode: min}]}", "objectives[1].metric"),
    ("{name: nsga2, objectives: [{metric: valid_acc}, {metric: latency_ms, mode: min}]}", "objectives[1].metric"),
    ("{name: map_elites, fitness: test_acc}", "fitness"),  # report-only: no strategy may see it
    ("{name: map_elites, descriptors: [{metric: flops_m, low: 0, high: 1}, {metric: lat, low: 0, high: 1}]}",
     "descriptors[1].metric"),
])
def test_a_metric_a_strategy_reads_must_be_one_the_evaluator_reports(nb201_path, strategy, field):
    """A typo, or latency from an evaluator without a latency device, is an error at build time."""
    from raynas.errors import RecipeError

    with pytest.raises(RecipeError, match=rf"^strategy\.{re.escape(field)}: evaluator 'tabular' reports no .*; "
                                          r"it reports: flops_m, params_mb, valid_acc$"):
        build_search(recipe(nb201_path, f"strategy={strategy}"))


def test_map_elites_fills_the_grid_with_the_best_per_cell(nb201_path):
    s, summary, col = search(nb201_path, "{name: map_elites}", "budget.sim_seconds=24000")
    me = s.strategy
    for cell, elite in me.archive.items():
        rivals = [r for r in col.records if me.cell(r.metrics) == cell]
        assert elite.score == max(r.metrics["valid_acc"] for r in rivals)
    assert summary.strategy_metrics["coverage"] == len(me.archive) / 100 > 0.1
    assert summary.strategy_metrics["qd_score"] == pytest.approx(sum(e.score for e in me.archive.values()))


def test_predictor_screens_children_and_learns(nb201_path):
    s, summary, col = search(nb201_path, "{name: predictor_evolution, screen: 50}", "budget.sim_seconds=12000")
    assert summary.strategy_metrics["surrogate_spearman"] > 0.3
    keys = [r.canonical for r in col.records]
    assert len(keys) == len(set(keys))  # functional dedup is on by default
