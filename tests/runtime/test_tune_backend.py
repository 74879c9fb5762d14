"""The Ray Tune backend on a real local Ray: equivalence with the simulator, concurrency, batching."""
from __future__ import annotations

import pytest

from raynas.runtime import build_search
from tests.runtime.helpers import Collector, recipe


def run(nb201_path, tmp_path, *overrides):
    col = Collector()
    summary = build_search(recipe(nb201_path, f"backend.storage_path={tmp_path}", *overrides), [col]).run()
    return col, summary


def sequence(col):
    return [(r.arch, r.parent, r.variation, r.sim_start_s, r.sim_end_s) for r in col.records]


@pytest.mark.parametrize("strategy", ["rea", "random"])
def test_one_worker_same_seed_identical_to_simulator(ray_local, nb201_path, tmp_path, strategy):
    args = [f"strategy={{name: {strategy}}}"]
    tune_col, tune_sum = run(nb201_path, tmp_path, "backend.name=tune", *args)
    sim_col, sim_sum = run(nb201_path, tmp_path, "backend.name=simulate", *args)
    assert len(tune_col.records) > 15
    assert sequence(tune_col) == sequence(sim_col)
    assert tune_sum.best.arch == sim_sum.best.arch and tune_sum.num_over_budget == sim_sum.num_over_budget


def test_two_workers_batched(ray_local, nb201_path, tmp_path):
    col, summary = run(nb201_path, tmp_path, "backend.name=tune", "backend.workers=2",
                       "backend.candidates_per_trial=4", "budget.sim_seconds=null", "budget.max_candidates=40")
    assert summary.num_candidates == len(col.records) == 40 and summary.num_failed == 0
    assert {r.worker for r in col.records} == {0, 1}
    assert len({r.trial_id for r in col.records}) == 10


@pytest.mark.parametrize("strategy", ["nsga2", "map_elites", "predictor_evolution", "proxy_prefilter"])
def test_every_strategy_runs_on_tune_like_in_the_simulator(ray_local, nb201_path, tmp_path, strategy):
    args = (f"strategy={{name: {strategy}}}", "evaluator.latency_device=pixel3", "budget.sim_seconds=1500")
    tune_col, _ = run(nb201_path, tmp_path, "backend.name=tune", *args)
    sim_col, _ = run(nb201_path, tmp_path, "backend.name=simulate", *args)
    assert len(tune_col.records) >= 8 and sequence(tune_col) == sequence(sim_col)
