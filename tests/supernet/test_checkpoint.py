"""Checkpoints (npz + json, no Ray): stopping after epoch 1 and resuming gives the very same weights
as training both epochs in one go (model, optimizer, sampler RNG, data order and LR all restored)."""
from __future__ import annotations

import numpy as np
import pytest

from raynas.supernet import build_sampler, build_supernet
from raynas.supernet.train import TrainConfig, make_optimizer, train_supernet
from raynas.supernet.trainable import restore_checkpoint, write_checkpoint
from raynas.supernet.weights import to_numpy, weights_version

CONFIG = TrainConfig(epochs=2, batch_size=256, lr=0.1, device="cpu")


class Crash(Exception):
    pass


def fresh(space):
    model = build_supernet("mbv3", space)
    return model, make_optimizer(model, CONFIG), build_sampler("uniform", space, {"num_archs": 2, "seed": 5})


def test_resume_from_checkpoint_matches_uninterrupted_training(tmp_path, tiny_space, digits):
    model, opt, rule = fresh(tiny_space)
    straight = train_supernet(model, rule, digits, CONFIG, optimizer=opt, eval_archs={})
    expected = to_numpy(model)

    model, opt, rule = fresh(tiny_space)
    first = []

    def checkpoint_then_crash(epoch, metrics):
        first.append(metrics)
        assert write_checkpoint(tmp_path, model, opt, rule, epochs_done=epoch) == weights_version(to_numpy(model))
        raise Crash

    with pytest.raises(Crash):
        train_supernet(model, rule, digits, CONFIG, optimizer=opt, eval_archs={}, on_epoch=checkpoint_then_crash)

    model, opt, rule = fresh(tiny_space)
    assert restore_checkpoint(tmp_path, model, opt, rule) == 1
    rest = train_supernet(model, rule, digits, CONFIG, optimizer=opt, eval_archs={}, start_epoch=1)
    assert [h["epoch"] for h in rest] == [2]
    assert first[0]["train_loss"] == straight[0]["train_loss"]
    assert rest[0]["train_loss"] == straight[1]["train_loss"]
    resumed = to_numpy(model)
    assert all(np.array_equal(resumed[k], expected[k]) for k in expected)


def test_current_config_overrides_restored_optimizer_hyperparameters(tmp_path, tiny_space):
    from raynas.supernet.train import apply_hyperparams

    model, opt, rule = fresh(tiny_space)
    write_checkpoint(tmp_path, model, opt, rule, epochs_done=1)
    mutated = TrainConfig(weight_decay=1e-3, momentum=0.5)
    model, opt, rule = fresh(tiny_space)
    restore_checkpoint(tmp_path, model, opt, rule)
    apply_hyperparams(opt, mutated)
    assert all(g["weight_decay"] == 1e-3 and g["momentum"] == 0.5 for g in opt.param_groups)
