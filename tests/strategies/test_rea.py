"""Regularized evolution: random warm-up, tournament selection, age-based removal, lineage."""
from __future__ import annotations

import numpy as np
import pytest

from raynas.evaluators.tabular import TabularNB201
from raynas.space.nb201 import NB201Space
from raynas.strategies.rea import RegularizedEvolution
from raynas.testing.strategy_contract import drive


@pytest.fixture(scope="module")
def evaluator(nb201_path):
    return TabularNB201(NB201Space(), TabularNB201.Config(data_path=nb201_path))


def make(pop=10, sample=3, seed=0):
    return RegularizedEvolution(NB201Space(), RegularizedEvolution.Config(population_size=pop, sample_size=sample),
                                seed=seed)


def test_first_population_is_random_then_children_of_members(evaluator):
    rea = make(pop=10)
    configs = drive(rea, evaluator, 40)
    assert all(c["parent"] is None and c["variation"] == "random" for c in configs[:10])
    space = NB201Space()
    for cfg in configs[10:]:
        parent, child = space.from_str(cfg["parent"]), space.from_str(cfg["arch"])
        assert sum(a != b for a, b in zip(parent, child)) == 1 and cfg["generation"] >= 1
        assert "->" in cfg["variation"]


def test_population_keeps_the_newest_members(evaluator):
    rea = make(pop=5)
    configs = drive(rea, evaluator, 30)
    assert [o.proposal for o in rea.population] == [o.proposal for o in rea.history[-5:]]
    assert len(rea.population) == 5 and len(configs) == 30


def test_tournament_parent_is_best_of_its_sample(evaluator):
    """With sample_size == population_size the parent always has the population's best score
    (NB201 copies results between isomorphic archs, so ties between distinct archs happen)."""
    rea = make(pop=8, sample=8, seed=4)
    drive(rea, evaluator, 8)
    space = NB201Space()
    for i in range(20):
        best = max(o.score for o in rea.population)
        cfg = rea.suggest(f"x{i}")
        parent_scores = [o.score for o in rea.population if space.to_str(o.proposal.arch) == cfg["parent"]]
        assert parent_scores and max(parent_scores) == best
        res = evaluator.evaluate([space.from_str(cfg["arch"])])[0]
        rea.on_trial_complete(f"x{i}", dict(res.metrics))


def test_strategy_never_sees_test_accuracy(evaluator):
    rea = make()
    drive(rea, evaluator, 15)
    assert all("test_acc" not in o.metrics for o in rea.history)
    assert np.isfinite([o.score for o in rea.history]).all()
