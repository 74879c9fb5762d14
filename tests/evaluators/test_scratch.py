"""The scratch evaluator (issue 15): each candidate trained stand-alone from fresh, seeded weights — the
space's own network (as many parameters as the space counts), resumable from its saved epoch with the
same weights as an uninterrupted run, on a registered dataset or a CIFAR-style folder given by path;
recipe mistakes are errors naming the field."""
from __future__ import annotations

import numpy as np
import pytest

from raynas.errors import RecipeError
from raynas.evaluators.scratch import ScratchEvaluator, arch_seed
from raynas.metrics import EPOCHS, TEST_ACC, VALID_ACC
from raynas.recipes import apply_overrides, parse_recipe
from raynas.space.mbv3 import MBV3Space
from raynas.space.transformer import TransformerSpace
from raynas.supernet import build_supernet
from raynas.supernet.standalone import fresh_network
from raynas.supernet.weights import to_numpy
from raynas.typed import from_dict
from tests.data.test_datasets import cifar_dir  # noqa: F401  (fixture: CIFAR batch files in a folder)
from tests.serving.helpers import TINY_MBV3

TRAIN = {"epochs": 3, "batch_size": 32, "lr": 0.05, "num_threads": 1}


@pytest.fixture(name="space")
def space_fixture():
    return MBV3Space(from_dict(MBV3Space.Config, TINY_MBV3, "space"))


def evaluator(space, **fields):
    return ScratchEvaluator(space, from_dict(ScratchEvaluator.Config, {"train": TRAIN, **fields}, "evaluator"))


def test_a_run_resumed_from_its_saved_epoch_ends_with_the_weights_of_an_uninterrupted_one(space, tmp_path):
    ev = evaluator(space)
    arch = space.sample(np.random.default_rng(3))
    straight = ev.start(arch)
    results = [straight.run_epoch() for _ in range(3)]
    first = ev.start(arch)
    first.run_epoch(), first.run_epoch()
    first.save(str(tmp_path))
    resumed = ev.start(arch, str(tmp_path))
    assert resumed.epochs_done == 2
    last = resumed.run_epoch()
    a, b = to_numpy(straight.run.net), to_numpy(resumed.run.net)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert last.metrics == results[-1].metrics and last.hidden == results[-1].hidden
    assert [r.metrics[EPOCHS] for r in results] == [1.0, 2.0, 3.0]
    assert results[-1].metrics[VALID_ACC] > results[0].metrics[VALID_ACC]  # it learns
    assert last.cost_s >= results[0].cost_s > 0  # seconds of every epoch, the restored ones included


def test_an_arch_scores_the_same_in_any_order_and_each_arch_gets_its_own_seed(space):
    ev = evaluator(space, train={**TRAIN, "epochs": 1})
    a, b = (space.sample(np.random.default_rng(s)) for s in (1, 2))
    ab, ba = ev.evaluate([a, b]), ev.evaluate([b, a])
    assert ab[0].metrics == ba[1].metrics and ab[1].hidden == ba[0].hidden
    assert arch_seed(0, space.to_str(a)) != arch_seed(0, space.to_str(b))
    assert arch_seed(0, space.to_str(a)) != arch_seed(1, space.to_str(a))


@pytest.mark.parametrize("space_cls, supernet", [(MBV3Space, "mbv3"), (TransformerSpace, "transformer")])
def test_the_network_is_the_spaces_own_with_fresh_weights(space_cls, supernet):
    space = space_cls()
    net = build_supernet(supernet, space)
    for seed in range(5):
        arch = space.sample(np.random.default_rng(seed))
        fresh = fresh_network(net, arch, seed=seed)
        assert sum(p.numel() for p in fresh.parameters()) == space.params(arch)
        shared = {id(p) for p in net.parameters()}
        assert not shared & {id(p) for p in fresh.parameters()}
    one, two = (to_numpy(fresh_network(net, arch, seed=s)) for s in (1, 2))
    assert any(not np.array_equal(one[k], two[k]) for k in one if one[k].ndim > 1)


def test_the_default_network_comes_from_the_supernet_serving_the_space(space):
    assert evaluator(space).supernet_name == "mbv3"
    assert evaluator(TransformerSpace()).supernet_name == "transformer"


def test_it_trains_on_a_cifar_style_folder_given_by_path(cifar_dir):  # noqa: F811
    folder, _, _ = cifar_dir
    r = parse_recipe(apply_overrides({
        "name": "scratch-cifar", "space": {"name": "nb201"},
        "evaluator": {"name": "scratch", "dataset": "cifar10",
                      "dataset_config": {"path": str(folder), "val_size": 15},
                      "supernet_config": {"in_channels": 3, "channels": 4},
                      "train": {**TRAIN, "epochs": 1}},
        "strategy": {"name": "random"}, "budget": {"max_candidates": 1}}, []))
    ev = r.evaluator.impl(r.space.impl(r.space.config), r.evaluator.config)
    (result,) = ev.evaluate([ev.space.sample(np.random.default_rng(0))])
    assert result.metrics[EPOCHS] == 1.0 and 0 <= result.hidden[TEST_ACC] <= 100


@pytest.mark.parametrize("section, field", [
    ({"dataset": "mnist"}, "evaluator.dataset"),
    ({"train": {"epochs": 0}}, "evaluator.train.epochs"),
    ({"dataset_config": {"sed": 1}}, "evaluator.dataset_config"),
    ({"supernet": "nope"}, "evaluator.supernet"),
])
def test_bad_config_is_an_error_naming_the_field(section, field):
    with pytest.raises(RecipeError) as err:
        parse_recipe({"name": "bad", "space": {"name": "mbv3"}, "evaluator": {"name": "scratch", **section},
                      "strategy": {"name": "random"}, "budget": {"max_candidates": 1}})
    assert err.value.field.startswith(field) and "\n" not in str(err.value)
