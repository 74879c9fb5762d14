"""Supernet training on digits: a tiny run beats chance; schedule, devices and subnet evaluation."""
from __future__ import annotations

import math

import pytest
import torch

from raynas.data.base import TRAIN, VAL
from raynas.space.nb201 import NB201Space
from raynas.supernet import build_sampler, build_supernet
from raynas.supernet.train import (
    LARGEST,
    SMALLEST,
    TrainConfig,
    evaluate_subnet,
    lr_at,
    reference_archs,
    select_device,
    train_supernet,
)

CHANCE = 0.1


def test_tiny_sandwich_run_on_digits_beats_chance(tiny_space, digits):
    model = build_supernet("mbv3", tiny_space)
    rule = build_sampler("sandwich", tiny_space, {"num_random": 1})
    config = TrainConfig(epochs=3, batch_size=64, lr=0.2, device="cpu")
    history = train_supernet(model, rule, digits, config)
    assert [h["epoch"] for h in history] == [1, 2, 3]
    last = history[-1]
    assert last["val_acc_largest"] > 5 * CHANCE and last["val_acc_smallest"] > 4 * CHANCE, last
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert last["lr"] < config.lr and last["steps"] == len(digits.train) // config.batch_size
    assert last["subnet_passes"] == 3 * last["steps"]  # largest + smallest + 1 random per step


def test_uniform_rule_trains_the_nb201_supernet(digits):
    space = NB201Space()
    model = build_supernet("nb201", space, {"channels": 4})
    rule = build_sampler("uniform", space)
    archs = reference_archs(space, num_random=1)
    assert list(archs) == ["random0"]
    history = train_supernet(model, rule, digits, TrainConfig(epochs=1, batch_size=128, device="cpu"),
                             eval_archs=archs)
    assert 0.0 <= history[0]["val_acc_random0"] <= 1.0 and math.isfinite(history[0]["train_loss"])


def test_evaluate_subnet_recalibrates_then_scores(tiny_space, digits):
    model = build_supernet("mbv3", tiny_space)
    arch = tiny_space.largest()
    val = digits.loader(VAL, 256)
    calib = list(digits.loader(TRAIN, 64, shuffle=True))
    acc = evaluate_subnet(model, arch, val, calib, num_calib_batches=2)
    assert 0.0 <= acc <= 1.0 and not model.training
    assert evaluate_subnet(model, arch, val, calib, num_calib_batches=2) == acc


def test_cosine_schedule_and_reference_archs(tiny_space):
    config = TrainConfig(lr=0.4)
    assert lr_at(config, 0, 100) == pytest.approx(0.4)
    assert lr_at(config, 50, 100) == pytest.approx(0.2)
    assert lr_at(config, 100, 100) == pytest.approx(0.0)
    assert lr_at(TrainConfig(lr=0.4, schedule="constant"), 70, 100) == 0.4
    archs = reference_archs(tiny_space, num_random=2, seed=1)
    assert archs[LARGEST] == tiny_space.largest() and archs[SMALLEST] == tiny_space.smallest()
    assert archs == reference_archs(tiny_space, num_random=2, seed=1) and len(archs) == 4


def test_device_selection():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert select_device("auto").type == expected and select_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            select_device("cuda")
