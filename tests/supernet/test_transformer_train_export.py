"""The transformer supernet through the rest of the stack, without Ray: sandwich training with in-place
distillation and uniform training on digits, the serving scorer (``ModelSpec``), and the supernet
evaluator's ``export_model`` — a stand-alone MLflow PyTorch model that reloads with the served outputs."""
from __future__ import annotations

import math

import mlflow.pytorch
import numpy as np
import pytest
import torch

from raynas.evaluators.supernet import SupernetEvaluator
from raynas.metrics import TEST_ACC, VALID_ACC, WEIGHTS_VERSION
from raynas.serving.export import save_mlflow_model
from raynas.serving.scorer import SubnetScorer
from raynas.serving.spec import EvalData, ModelSpec
from raynas.space.transformer import TransformerSpace
from raynas.supernet import build_sampler, build_supernet
from raynas.supernet.train import TrainConfig, evaluate_subnet, train_supernet
from raynas.typed import from_dict

# One or two layers of 16/32 features, 1-2 heads of 8: trains on digits in about a second per epoch.
TINY = dict(embed_dims=[16, 32], depths=[1, 2], num_heads=[1, 2], mlp_ratios=[2, 3], head_dim=8)
TRAIN = {"epochs": 1, "batch_size": 128, "calib_batches": 2, "num_threads": 1, "optimizer": "adam", "lr": 0.003}
CHANCE = 0.1


@pytest.fixture(scope="module")
def space():
    return TransformerSpace(TransformerSpace.Config(**TINY))


def test_sandwich_with_inplace_distillation_beats_chance(space, digits):
    model = build_supernet("transformer", space)
    rule = build_sampler("sandwich", space, {"num_random": 1, "inplace_distill": True})
    config = TrainConfig(epochs=8, batch_size=64, lr=0.003, optimizer="adam", weight_decay=0.0, device="cpu")
    history = train_supernet(model, rule, digits, config)
    last = history[-1]
    assert last["val_acc_largest"] > 5 * CHANCE and last["val_acc_smallest"] > 2 * CHANCE, last
    assert last["train_loss"] < history[0]["train_loss"] and last["subnet_passes"] == 3 * last["steps"]


def test_uniform_rule_trains_and_scores(space, digits):
    model = build_supernet("transformer", space)
    history = train_supernet(model, build_sampler("uniform", space), digits,
                             TrainConfig(epochs=1, batch_size=128, optimizer="adam", lr=0.003, device="cpu"))
    assert math.isfinite(history[0]["train_loss"]) and 0.0 <= history[0]["val_acc_largest"] <= 1.0


def spec(**fields):
    return ModelSpec.for_training(train_seed=0, train_batch_size=TRAIN["batch_size"],
                                  calib_batches=TRAIN["calib_batches"], space="transformer", space_config=TINY,
                                  supernet="transformer", **fields)


def test_scorer_serves_the_supernet_like_train_evaluates(digits):
    from raynas.supernet.weights import to_numpy

    scorer = SubnetScorer(spec(), EvalData.build(spec(), digits))
    model = build_supernet("transformer", scorer.space, {"seed": 5})
    scorer.load(to_numpy(model))
    arch = scorer.space.largest()
    result = scorer.score(arch)
    assert 0.0 <= result[VALID_ACC] <= 100.0 and 0.0 <= result[TEST_ACC] <= 100.0
    calib = [torch.from_numpy(x) for x in EvalData.build(spec(), digits).calib]
    expected = evaluate_subnet(model, arch, [digits.val.tensors()], calib, len(calib))
    assert result[VALID_ACC] == pytest.approx(100.0 * expected)
    assert scorer.score(arch)[VALID_ACC] == result[VALID_ACC]  # recalibration found no BN: nothing changes


def test_extracted_subnet_exports_to_mlflow_and_reloads_with_the_same_outputs(space, tmp_path):
    model = build_supernet("transformer", space).eval()
    arch = space.sample(np.random.default_rng(3))
    x = np.random.default_rng(0).standard_normal((20, 1, 8, 8)).astype(np.float32)
    out = save_mlflow_model(model.extract(arch), x, tmp_path / "model", metadata={"arch": space.to_str(arch)})
    loaded = mlflow.pytorch.load_model(str(out))
    with torch.no_grad():
        torch.testing.assert_close(loaded(torch.from_numpy(x)), model(torch.from_numpy(x), arch), rtol=1e-5, atol=1e-5)
    assert mlflow.models.get_model_info(str(out)).metadata["arch"] == space.to_str(arch)


def test_evaluator_export_model_slices_the_served_weights(space, tmp_path, digits):
    config = from_dict(SupernetEvaluator.Config, {"supernet": "transformer", "sampling": "sandwich", "train": TRAIN,
                                                  "weights_dir": str(tmp_path / "weights")}, "evaluator")
    evaluator = SupernetEvaluator(space, config)
    arch = space.sample(np.random.default_rng(1))
    out = evaluator.export_model(arch, str(tmp_path / "exported"))  # no Ray: trains in-process, then kept
    loaded = mlflow.pytorch.load_model(out)
    assert sum(p.numel() for p in loaded.parameters()) == space.params(arch)
    scorer = SubnetScorer(evaluator.spec, EvalData.build(evaluator.spec, digits))
    version = scorer.load(evaluator.weights(digits))
    assert mlflow.models.get_model_info(out).metadata[WEIGHTS_VERSION] == version
    x = torch.from_numpy(digits.val.tensors()[0][:50].numpy())
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), scorer.model(x, arch), rtol=1e-5, atol=1e-5)
