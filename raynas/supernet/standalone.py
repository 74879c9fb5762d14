"""Training one arch from scratch (stand-alone: no weight sharing), one epoch at a time, resumable.

Contract:
  * The network of ``arch`` is ``supernet.extract(arch)`` of a freshly built supernet (the space's own
    static subnet where the supernet has one: mbv3; the supernet restricted to ``arch`` otherwise:
    nb201), re-initialised by ``init_weights`` from ``seed`` — it shares nothing with any other run.
  * ``run_epoch()`` trains one pass over the train split (``TrainConfig``'s optimizer; the learning
    rate follows ``lr_at`` over ``config.epochs`` epochs; batches shuffled by (seed, epoch); dropout
    drawn from a generator seeded by (seed, epoch), the global torch RNG restored afterwards) and
    returns ``EpochMetrics`` measured after it (accuracies in percent, eval mode).
  * ``save(directory)`` writes the run (weights, optimizer, epochs done, seconds spent) as ``.npz``
    and JSON files; ``StandaloneRun(..., directory=d)`` continues from them, and the epochs it then
    trains give the same weights as a run never interrupted.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from raynas.data.base import TEST, TRAIN, VAL, Splits
from raynas.space.base import Arch, SearchSpace
from raynas.supernet.base import Supernet, init_weights
from raynas.supernet.train import (
    EVAL_BATCH_SIZE,
    TrainConfig,
    configure_threads,
    lr_at,
    make_optimizer,
    select_device,
)
from raynas.supernet.weights import load_npz, load_numpy, optimizer_load_numpy, optimizer_to_numpy, save_npz, to_numpy

WEIGHTS_FILE, OPTIMIZER_FILE, STATE_FILE = "weights.npz", "optimizer.npz", "run.json"
EPOCHS_DONE, ELAPSED_S, OPTIMIZER_META = "epochs_done", "elapsed_s", "optimizer"
DROPOUT_SEED_OFFSET = 104_729  # dropout's generator is seeded apart from the data order


class EpochMetrics(NamedTuple):
    """After ``epoch`` (1-based) epochs: mean train loss of the epoch, val/test accuracy (percent), and
    the training seconds spent so far (all epochs, restored runs included)."""

    epoch: int
    train_loss: float
    valid_acc: float
    test_acc: float
    elapsed_s: float


def fresh_network(supernet: Supernet, arch: Arch, seed: int) -> nn.Module:
    """The stand-alone network of ``arch`` with weights initialised from ``seed``."""
    net = supernet.extract(arch)
    init_weights(net, seed)
    return net.train()


class StandaloneRun:
    """One arch trained from scratch on ``splits`` (see the module docstring)."""

    def __init__(self, space: SearchSpace, arch: Arch, supernet: Supernet, splits: Splits, config: TrainConfig,
                 *, seed: int, directory: str | Path | None = None) -> None:
        configure_threads(config.num_threads)
        self.space, self.arch, self.splits, self.config, self.seed = space, arch, splits, config, seed
        self.device = select_device(config.device)
        self.net = fresh_network(supernet, arch, seed).to(self.device)
        self.optimizer = make_optimizer(self.net, config)
        self.epochs_done, self.elapsed_s = 0, 0.0
        if directory is not None:
            self._load(Path(directory))

    @property
    def steps_per_epoch(self) -> int:
        return -(-len(self.splits.split(TRAIN)) // self.config.batch_size)

    def run_epoch(self) -> EpochMetrics:
        start = time.perf_counter()
        loss = self._train_epoch()
        self.epochs_done += 1
        valid, test = self._accuracy(VAL), self._accuracy(TEST)
        self.elapsed_s += time.perf_counter() - start
        return EpochMetrics(self.epochs_done, loss, valid, test, self.elapsed_s)

    def _train_epoch(self) -> float:
        cfg, total = self.config, self.config.epochs * self.steps_per_epoch
        loader = self.splits.loader(TRAIN, cfg.batch_size, shuffle=True, seed=self.seed, epoch=self.epochs_done)
        step, loss_sum, seen = self.epochs_done * self.steps_per_epoch, 0.0, 0
        self.net.train()
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.seed * 1_000_003 + self.epochs_done + DROPOUT_SEED_OFFSET)
            for x, y in loader:
                x, y = x.to(self.device), y.to(self.device)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr_at(cfg, step, total)
                self.optimizer.zero_grad(set_to_none=True)
                loss = F.cross_entropy(self.net(x), y)
                loss.backward()
                if cfg.grad_clip is not None:
                    nn.utils.clip_grad_norm_(self.net.parameters(), cfg.grad_clip)
                self.optimizer.step()
                loss_sum, seen, step = loss_sum + float(loss.detach()) * len(y), seen + len(y), step + 1
        return loss_sum / max(1, seen)

    @torch.no_grad()
    def _accuracy(self, split: str) -> float:
        self.net.eval()
        correct = seen = 0
        for x, y in self.splits.loader(split, EVAL_BATCH_SIZE):
            correct += int((self.net(x.to(self.device)).argmax(1) == y.to(self.device)).sum())
            seen += len(y)
        return 100.0 * correct / max(1, seen)

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        save_npz(directory / WEIGHTS_FILE, to_numpy(self.net))
        arrays, meta = optimizer_to_numpy(self.optimizer)
        save_npz(directory / OPTIMIZER_FILE, arrays)
        state = {EPOCHS_DONE: self.epochs_done, ELAPSED_S: self.elapsed_s, OPTIMIZER_META: meta}
        (directory / STATE_FILE).write_text(json.dumps(state))

    def _load(self, directory: Path) -> None:
        state: dict[str, Any] = json.loads((directory / STATE_FILE).read_text())
        load_numpy(self.net, load_npz(directory / WEIGHTS_FILE))
        optimizer_load_numpy(self.optimizer, load_npz(directory / OPTIMIZER_FILE), state[OPTIMIZER_META])
        self.epochs_done, self.elapsed_s = int(state[EPOCHS_DONE]), float(state[ELAPSED_S])

