"""Every registered evaluator passes the evaluator contract suite, built from recipe sections as a user
would write them (a new evaluator without an entry here fails: the suite is parametrized over the
registry). The supernet evaluator runs on a real local Ray with a tiny mbv3 supernet trained on digits."""
from __future__ import annotations

import pytest

from raynas.evaluators import EVALUATORS
from raynas.evaluators.base import EpochEvaluator
from raynas.recipes import parse_recipe
from raynas.testing.epoch_evaluator_contract import EpochEvaluatorContract
from raynas.testing.evaluator_contract import EvaluatorContract
from tests.serving.helpers import TINY_MBV3, TRAIN

NB201 = {"name": "nb201"}
TINY_MBV3_SPACE = {"name": "mbv3", **TINY_MBV3}
SCRATCH_TRAIN = {"epochs": 1, "batch_size": 128, "lr": 0.05, "num_threads": 1}
POOL = {"replicas": 1, "num_cpus": 0.5, "prepare_num_cpus": 0.5}


def sections(name: str, seed: int, tmp, nb201_path: str) -> tuple[dict, dict]:
    """``(space, evaluator)`` recipe sections for evaluator ``name`` with its randomness from ``seed``; a
    registered subclass without an entry (another test's) is built like its nearest registered base."""
    table = {
        "tabular": (NB201, {"name": "tabular", "data_path": nb201_path, "latency_device": "pixel3"}),
        "cost": (NB201, {"name": "cost", "data_path": nb201_path, "latency_device": "pixel3"}),
        "zero_cost": (NB201, {"name": "zero_cost", "proxies": ["naswot", "synflow"], "channels": 8,
                              "init_seed": seed}),
        "supernet": (TINY_MBV3_SPACE, {"name": "supernet", "sampling": "uniform", "pool": POOL,
                                       "train": {**TRAIN, "seed": seed}, "weights_dir": str(tmp / "weights")}),
        "scratch": (TINY_MBV3_SPACE, {"name": "scratch", "train": {**SCRATCH_TRAIN, "seed": seed}}),
    }
    if name not in table:
        base = next(c.__dict__["registry_name"] for c in EVALUATORS.get(name).__mro__[1:]
                    if c.__dict__.get("registry_name") in table)
        space, evaluator = table[base]
        return space, {**evaluator, "name": name}
    return table[name]


@pytest.mark.parametrize("name", EVALUATORS.names())
class TestEvaluatorContract(EvaluatorContract):
    @pytest.fixture
    def evaluator_factory(self, name, nb201_path, tmp_path_factory, request):
        if name == "supernet":  # serves through Ray actors
            request.getfixturevalue("ray_local")
        tmp = tmp_path_factory.mktemp(f"contract-{name}")
        made = []

        def factory(seed):
            space, evaluator = sections(name, seed, tmp, nb201_path)
            recipe = parse_recipe({"name": "contract", "space": space, "evaluator": evaluator,
                                   "strategy": {"name": "random"}, "budget": {"max_candidates": 1}})
            made.append(recipe.evaluator.impl(recipe.space.impl(recipe.space.config), recipe.evaluator.config))
            return made[-1]

        yield factory
        for evaluator in made:
            evaluator.close()


@pytest.mark.parametrize("name", [n for n in EVALUATORS.names() if issubclass(EVALUATORS.get(n), EpochEvaluator)])
class TestEpochEvaluatorContract(EpochEvaluatorContract):
    @pytest.fixture
    def evaluator_factory(self, name, nb201_path, tmp_path_factory):
        tmp = tmp_path_factory.mktemp(f"epoch-contract-{name}")

        def factory(seed):
            space, evaluator = sections(name, seed, tmp, nb201_path)
            evaluator = {**evaluator, "train": {**evaluator["train"], "epochs": 2}}
            recipe = parse_recipe({"name": "contract", "space": space, "evaluator": evaluator,
                                   "strategy": {"name": "random"}, "budget": {"max_candidates": 1}})
            return recipe.evaluator.impl(recipe.space.impl(recipe.space.config), recipe.evaluator.config)

        return factory
