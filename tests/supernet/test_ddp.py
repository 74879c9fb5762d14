"""Data-parallel supernet training (``raynas.supernet.ddp``) on a real local Ray, gloo, 2 workers.

* Equality: 2 workers with global batch B give the parameters of one process training the same
  global batches with BatchNorm per half-batch ("ghost batches", ``GhostBatches``: what two workers'
  BN sees), within ``ATOL`` (float32: DDP sums the halves' gradients in another order); with
  ``train.sync_bn`` (BatchNorm over the global batch), those of the plain single process.
* Fault tolerance: a worker process dies (``os._exit``) once after epoch 3's report; Ray Train
  (``FailureConfig(max_failures=1)``) restarts the group from the last committed checkpoint and the run
  ends with the weights of an uninterrupted run (the single-process equivalent, within ``ATOL``).
The crash hook is pickled by value, so Ray's workers need not import this test module."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from ray import cloudpickle
from torch import nn

from raynas.data import load_dataset
from raynas.data.base import TRAIN
from raynas.errors import RecipeError
from raynas.supernet.ddp import DDPRun, GatheredSamples, fit_ddp, local_batch_size, shard_loader, train_worker
from raynas.supernet.train import TrainConfig, train_supernet
from raynas.supernet.trial import build_trial
from raynas.supernet.weights import to_numpy
from tests.supernet.conftest import TINY_MBV3

ATOL = 1e-5  # float32 all-reduce ordering over ~10 SGD steps
# sync BN: float32 rounding of the statistics summed over shards (exact per layer: test_sync_bn.py),
# grown over the steps (1.6e-5 seen); the per-shard BN difference it removes is 1.3e-3
ATOL_SYNC_BN = 1e-4
WORKERS = 2
TRAIN_CFG = {"epochs": 2, "batch_size": 128, "lr": 0.05, "num_threads": 1, "device": "cpu",
             "workers": WORKERS, "cpus_per_worker": 1.0}
SANDWICH = {"num_random": 1, "inplace_distill": True}


PADA_NB201 = {"space": "nb201", "space_config": {}, "supernet_config": {"channels": 4}, "sampling": "pada",
              "sampling_config": {}}


def trial_config(base: dict | None = None, **train) -> dict:
    """The tiny mbv3 supernet with the sandwich rule (or ``base``'s components) on digits, 2 workers."""
    return {"space": "mbv3", "space_config": TINY_MBV3, "sampling": "sandwich", "sampling_config": SANDWICH,
            "dataset": "digits", **(base or {}), "train": {**TRAIN_CFG, **train}}


class GhostBatches(nn.Module):
    """One process as ``shards`` workers: each batch runs as ``shards`` chunks (BN statistics per chunk)."""

    def __init__(self, model: nn.Module, shards: int) -> None:
        super().__init__()
        self.model, self.shards = model, shards

    def forward(self, x: torch.Tensor, arch) -> torch.Tensor:
        return torch.cat([self.model(chunk, arch) for chunk in x.chunk(self.shards)])

    def op_parameter_names(self, edge: int, op: int) -> set[str]:  # for PA&DA
        return {f"model.{name}" for name in self.model.op_parameter_names(edge, op)}


def single_process(trial: dict, ghost: bool = True) -> tuple[dict[str, np.ndarray], dict]:
    """The reference: ``train_supernet`` on the global batches (BN per worker's chunk unless not
    ``ghost``: the plain single process); (weights, rule state)."""
    built = build_trial(trial)
    config = built.config.train
    model = GhostBatches(built.model, config.workers) if ghost else built.model
    train_supernet(model, built.rule, built.splits, config, eval_archs={})
    return to_numpy(built.model), built.rule.state()


def parameters_of(trial: dict) -> set[str]:
    return {name for name, _ in build_trial(trial).model.named_parameters()}


def max_error(a: dict, b: dict, names: set[str]) -> float:
    return max(float(np.abs(a[n] - b[n]).max()) for n in names)


# --- no Ray -------------------------------------------------------------------------------------
@pytest.mark.parametrize("weighted", [False, True])
def test_shards_concatenate_to_the_global_batches(weighted):
    splits = load_dataset("digits")
    weights = np.linspace(1.0, 2.0, len(splits.train)) if weighted else None

    def loader():
        return splits.loader(TRAIN, 64, shuffle=True, seed=3, epoch=2, drop_last=True, weights=weights,
                             with_indices=True)
    shards = [list(shard_loader(loader(), rank, WORKERS)) for rank in range(WORKERS)]
    whole = list(loader())
    assert len(whole) == len(shards[0]) == len(shards[1])
    for full, *parts in zip(whole, *shards):
        for i in range(3):  # x, y, indices
            assert torch.equal(full[i], torch.cat([p[i] for p in parts]))


def test_global_batch_must_divide_over_workers():
    assert local_batch_size(TrainConfig(batch_size=128, workers=2)) == 64
    with pytest.raises(RecipeError, match=r"^evaluator\.train\.batch_size: .*divisible"):
        local_batch_size(TrainConfig(batch_size=127, workers=2), "evaluator.train")


def test_gathered_rule_delegates_to_the_wrapped_rule():
    rule = GatheredSamples(build_trial(trial_config()).rule, torch.device("cpu"))
    assert rule.next_step().distill and not rule.observes_samples
    with pytest.raises(AttributeError):
        rule._missing  # noqa: B018


# --- on Ray ------------------------------------------------------------------------------------
# Sandwich on mbv3 with per-worker BN (rank 0 evaluating) is the killed-worker test's run below: its
# restored weights must equal the ghost-batch single process too, so a separate run would prove no more.
@pytest.mark.parametrize("base,sync_bn", [(PADA_NB201, False), (None, True)],
                         ids=["pada-nb201", "sandwich-mbv3-sync-bn"])
def test_two_workers_equal_one_process_with_the_same_global_batch(ray_local, tmp_path, base, sync_bn):
    """PA&DA (epoch 2 samples paths and data by what epoch 1 saw); sandwich with in-place distillation
    and ``sync_bn`` (BatchNorm over the global batch; rank 0 evaluating after each epoch: BN
    recalibration changes its running statistics only): the reference is the plain single process."""
    trial, evaluate = trial_config(base, sync_bn=sync_bn), base is None
    result = fit_ddp(DDPRun(trial, evaluate=evaluate), str(tmp_path / "ddp"))
    assert result.state["epochs_done"] == TRAIN_CFG["epochs"]
    assert [m["epoch"] for m in result.history] == [1, 2] and result.history[0]["workers"] == WORKERS
    assert not evaluate or all(0.0 <= m["val_acc_largest"] <= 1.0 for m in result.history)
    reference, rule_state = single_process(trial, ghost=not sync_bn)
    error = max_error(result.arrays, reference, parameters_of(trial))
    print(f"max |ddp - single process| over parameters: {error:.2e}")
    assert error <= (ATOL_SYNC_BN if sync_bn else ATOL)
    if base is PADA_NB201:  # every worker's rule saw the whole global batch: the same distributions
        for key in ("op_probs", "data_probs"):
            np.testing.assert_allclose(result.state["sampler"][key], rule_state[key], rtol=1e-5, atol=1e-8)


class CrashOnce:
    """``after_epoch`` hook: rank ``rank`` exits its process after epoch ``epoch`` (once: a marker file)."""

    def __init__(self, marker: str, rank: int = 1, epoch: int = 1) -> None:
        self.marker, self.rank, self.epoch = marker, rank, epoch

    def __call__(self, epochs_done: int, rank: int) -> None:
        if rank == self.rank and epochs_done == self.epoch and not Path(self.marker).exists():
            Path(self.marker).touch()
            os._exit(1)  # the worker process dies, as if killed


def crashing_loop(marker: str, epoch: int):
    def loop(config: dict):
        return train_worker(config, after_epoch=CrashOnce(marker, epoch=epoch))
    return loop


def test_a_killed_worker_restores_from_the_last_checkpoint(ray_local, tmp_path):
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    marker = tmp_path / "crashed"
    trial = trial_config(epochs=4, batch_size=256)
    # Rank 1 dies right after epoch 3's report. Ray Train commits a report once its controller (polling
    # every 2 s) has taken it from every worker's one-slot result queue, so the last reports before a
    # crash may be lost; epoch 1's is surely committed by then (rank 1's epoch-3 put waited for its
    # epoch-2 result to be taken, after rank 0 had put epoch 1's). The group resumes from the latest.
    # Rank 0 evaluates after each epoch (BN recalibration changes running statistics only, not the
    # parameters compared below): with sandwich + in-place distillation and per-worker BN, this run is
    # also the plain "2 workers = one process with ghost batches" case of the test above.
    crashed = fit_ddp(DDPRun(trial, evaluate=True, max_failures=1), str(tmp_path / "a"),
                      loop=crashing_loop(str(marker), epoch=3))
    assert marker.exists() and crashed.state["epochs_done"] == 4
    resumed = [m["epoch"] for m in crashed.history]
    assert resumed in ([2, 3, 4], [3, 4], [4]), resumed  # restored from a checkpoint, not started again
    assert all(m["workers"] == WORKERS and 0.0 <= m["val_acc_largest"] <= 1.0 for m in crashed.history)
    uninterrupted, _ = single_process(trial)  # = an uninterrupted 2-worker run (the test above)
    error = max_error(crashed.arrays, uninterrupted, parameters_of(trial))
    print(f"max |restored - uninterrupted| over parameters: {error:.2e}")
    assert error <= ATOL
