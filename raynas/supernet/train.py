"""Supernet training: a plain loop over epochs with a sampling rule, and subnet evaluation.

Contract:
  * ``train_supernet`` trains ``model`` for epochs ``start_epoch+1 .. config.epochs`` and returns one
    metrics dict per epoch trained (``epoch`` counts completed epochs); each step accumulates the
    gradients of every arch of the rule's ``Step`` (students learn from the teacher's soft labels when
    the step distills) and makes one optimizer step; the learning rate follows ``config.schedule`` per
    step, as a pure function of the global step (so a resumed run continues the same curve);
    shuffling is seeded per epoch (``config.seed``).
  * The rule's training hooks (``raynas.supernet.sampling``) are called: ``bind(model)`` once;
    per epoch ``epoch_weights(N)`` — given probabilities, the epoch draws N train samples with
    replacement (seeded by ``config.seed`` and the epoch) and weights sample ``i``'s cross-entropy by
    ``1 / (N p_i)`` (unbiased importance sampling, PA&DA) —, per step ``observe_step`` after the
    backward passes (before clipping) and, for rules that set ``observes_samples``, ``observe_samples``
    with each sample's logit-gradient norm ``||softmax(z) - onehot(y)||``; ``end_epoch()`` after the
    epoch's steps (before evaluation and ``on_epoch``, so a checkpoint holds the next epoch's
    distributions). A rule without statistics (``uniform``, ...) trains exactly as without the hooks.
  * ``evaluate_subnet`` recalibrates BN for the arch, then returns its top-1 accuracy in [0, 1].
  * Device: CUDA when available (``device="auto"``), else CPU; ``num_threads`` sets torch's CPU threads.
  * Data parallel: ``workers > 1`` is trained by Ray Train (``raynas.supernet.ddp``, which reuses
    ``train_epoch``); given a ``DistributedDataParallel`` model, ``train_step`` runs every pass but the
    step's last under ``no_sync()`` (one gradient all-reduce per optimizer step) and the rule's hooks
    see the wrapped module. ``batch_size`` is the global batch.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from typing import Any, Callable, ContextManager, Iterable, Literal, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from raynas.data.base import TRAIN, VAL, Splits
from raynas.devices import AUTO, Device, resolve_device
from raynas.space.base import Arch, SearchSpace
from raynas.supernet.bn import DEFAULT_CALIB_BATCHES, recalibrate_bn
from raynas.supernet.sampling import SamplingRule, Step, kd_loss
from raynas.typed import bounded

SGD, ADAM = "sgd", "adam"
COSINE, CONSTANT = "cosine", "constant"
LARGEST, SMALLEST = "largest", "smallest"
CALIB_SEED_OFFSET = 7919  # calibration batches come from their own seeded shuffle of the train split
EVAL_BATCH_SIZE = 256
EpochCallback = Callable[[int, dict[str, Any]], None]


@dataclasses.dataclass
class TrainConfig:
    """Optimisation of a supernet; defaults train the default mbv3 supernet on digits in ~a minute."""

    epochs: int = bounded(10, ge=1)
    batch_size: int = bounded(32, ge=1)
    lr: float = bounded(0.1, gt=0.0)
    optimizer: Literal["sgd", "adam"] = SGD
    momentum: float = bounded(0.9, ge=0.0, lt=1.0)
    weight_decay: float = bounded(3e-5, ge=0.0)
    schedule: Literal["cosine", "constant"] = COSINE
    kd_alpha: float = bounded(1.0, ge=0.0, le=1.0)  # students: kd_alpha * KD + (1 - kd_alpha) * CE
    kd_temperature: float = bounded(1.0, gt=0.0)
    grad_clip: float | None = bounded(5.0, gt=0.0)
    calib_batches: int = bounded(DEFAULT_CALIB_BATCHES, ge=1)
    seed: int = bounded(0, ge=0)
    num_threads: int | None = bounded(None, ge=1)
    device: Device = AUTO
    workers: int = bounded(1, ge=1)  # > 1: data-parallel with Ray Train, batch_size split over the workers
    cpus_per_worker: float = bounded(1.0, gt=0.0)  # Ray resources of each data-parallel worker
    gpus_per_worker: float = bounded(0.0, ge=0.0)  # > 0: the workers use CUDA and nccl (else CPU and gloo)
    # data-parallel: BatchNorm with the global batch's statistics (synchronised) instead of each shard's
    sync_bn: bool = False


def select_device(name: str = AUTO) -> torch.device:
    """The torch device of ``raynas.devices.resolve_device(name)`` (in a Ray worker: CUDA only when Ray
    assigned it a GPU); asking for absent CUDA is an error (``ValueError``)."""
    return torch.device(resolve_device(name))


def configure_threads(num_threads: int | None) -> None:
    if num_threads is not None:
        torch.set_num_threads(num_threads)


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == ADAM:
        return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                           weight_decay=config.weight_decay, nesterov=config.momentum > 0)


def apply_hyperparams(optimizer: torch.optim.Optimizer, config: TrainConfig) -> None:
    """Set ``config``'s weight decay (and SGD momentum) on every param group — after loading an
    optimizer state saved under another config (e.g. a PBT exploit), the current config wins.
    The learning rate is set every step by ``train_epoch``."""
    for group in optimizer.param_groups:
        group["weight_decay"] = config.weight_decay
        if "momentum" in group:
            group["momentum"] = config.momentum


def lr_at(config: TrainConfig, step: int, total_steps: int) -> float:
    """Learning rate at global ``step`` of ``total_steps``: constant, or cosine from ``lr`` to 0."""
    if config.schedule == CONSTANT:
        return config.lr
    return 0.5 * config.lr * (1.0 + math.cos(math.pi * min(step, total_steps) / max(1, total_steps)))


def reference_archs(space: SearchSpace, num_random: int = 0, seed: int = 0) -> dict[str, Arch]:
    """Archs to track during training: the space's ``largest``/``smallest`` when it has them, plus
    ``num_random`` seeded uniform archs (``random0``, ...)."""
    archs: dict[str, Arch] = {}
    for name in (LARGEST, SMALLEST):
        if callable(getattr(space, name, None)):
            archs[name] = getattr(space, name)()
    rng = np.random.default_rng(seed)
    archs.update({f"random{i}": space.sample(rng) for i in range(num_random)})
    return archs


class StepResult(NamedTuple):
    """Mean loss over the step's archs, correct predictions of ``archs[0]``, and (when asked) each
    sample's logit-gradient norm ``||softmax(z) - onehot(y)||`` averaged over the archs."""

    loss: float
    correct: int
    grad_norms: torch.Tensor | None = None


def logit_grad_norms(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per sample, the norm of the cross-entropy's gradient w.r.t. the logits: ``||softmax(z) - onehot(y)||``."""
    with torch.no_grad():
        return torch.linalg.vector_norm(F.softmax(logits.float(), dim=1)
                                        - F.one_hot(y, logits.shape[1]).float(), dim=1)


def base_module(model: nn.Module) -> nn.Module:
    """The supernet itself: ``model``, or the module a ``DistributedDataParallel`` wraps."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def pass_context(model: nn.Module, index: int, passes: int) -> ContextManager[Any]:
    """Under DDP, ``no_sync()`` for every pass of a step but the last: gradients accumulate locally and
    the last backward all-reduces their sum once; a plain module: nothing."""
    if isinstance(model, DistributedDataParallel) and index < passes - 1:
        return model.no_sync()
    return contextlib.nullcontext()


def train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, step: Step, config: TrainConfig,
               sample_weights: torch.Tensor | None = None, record_grad_norms: bool = False) -> StepResult:
    """Forward/backward every arch of ``step`` (gradients accumulate); returns a ``StepResult``. With
    ``sample_weights`` the cross-entropy is ``mean(w_i * CE_i)`` (the distillation term is not
    weighted). The caller zeroes gradients and steps the optimizer."""
    teacher: torch.Tensor | None = None
    total, correct, norms = 0.0, 0, None
    for i, arch in enumerate(step.archs):
        with pass_context(model, i, len(step.archs)):
            logits = model(x, arch)
            if sample_weights is None:
                loss = F.cross_entropy(logits, y)
            else:
                loss = (F.cross_entropy(logits, y, reduction="none") * sample_weights).mean()
            if record_grad_norms:
                arch_norms = logit_grad_norms(logits, y)
                norms = arch_norms if norms is None else norms + arch_norms
            if step.distill and teacher is not None:
                kd = kd_loss(logits, teacher, config.kd_temperature)
                loss = config.kd_alpha * kd + (1.0 - config.kd_alpha) * loss
            if i == 0:
                teacher = logits.detach()
                correct = int((teacher.argmax(1) == y).sum())
            loss.backward()
        total += float(loss.detach())
    return StepResult(total / len(step.archs), correct, None if norms is None else norms / len(step.archs))


def train_epoch(model: nn.Module, batches: Iterable[Any], rule: SamplingRule, optimizer: torch.optim.Optimizer,
                config: TrainConfig, first_step: int, total_steps: int,
                sample_probs: np.ndarray | None = None) -> dict[str, float]:
    """One pass over ``batches`` (``(x, y)``, or ``(x, y, indices)`` — needed with ``sample_probs``, the
    probabilities the batches were drawn with, and for rules that observe samples); returns
    ``train_loss``, ``train_acc`` (of each step's first arch), ``lr`` (last used), ``steps`` and
    ``subnet_passes`` (forward/backward passes, i.e. the compute spent: a sandwich step with two
    random subnets makes four). Calls the rule's ``observe_step``/``observe_samples`` hooks."""
    device = next(model.parameters()).device
    model.train()
    loss_sum, correct, seen, step_i, lr, passes = 0.0, 0, 0, first_step, config.lr, 0
    importance = None if sample_probs is None else torch.as_tensor(
        1.0 / (len(sample_probs) * np.asarray(sample_probs, dtype=np.float64)), dtype=torch.float32)
    for batch in batches:
        x, y, indices = batch if len(batch) == 3 else (*batch, None)
        if indices is None and (importance is not None or rule.observes_samples):
            raise ValueError("batches need sample indices (x, y, indices) for importance weights / observe_samples")
        x, y = x.to(device), y.to(device)
        lr = lr_at(config, step_i, total_steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.zero_grad(set_to_none=True)
        step = rule.next_step()
        weights = None if importance is None else importance[indices].to(device)
        loss, ok, norms = train_step(model, x, y, step, config, weights, rule.observes_samples)
        rule.observe_step(base_module(model), step)
        if norms is not None:
            rule.observe_samples(indices.numpy(), norms.cpu().numpy().astype(np.float64))
        passes += len(step.archs)
        if config.grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        loss_sum, correct, seen, step_i = loss_sum + loss * len(y), correct + ok, seen + len(y), step_i + 1
    return {"train_loss": loss_sum / max(1, seen), "train_acc": correct / max(1, seen), "lr": lr,
            "steps": step_i - first_step, "subnet_passes": passes}


@torch.no_grad()
def accuracy(model: nn.Module, arch: Arch, batches: Iterable[Any]) -> float:
    """Top-1 accuracy of ``arch`` in the model's current mode (eval, usually)."""
    device = next(model.parameters()).device
    correct = seen = 0
    for x, y in batches:
        pred = model(x.to(device), arch).argmax(1)
        correct += int((pred == y.to(device)).sum())
        seen += len(y)
    return correct / max(1, seen)


def evaluate_subnet(model: nn.Module, arch: Arch, loader: Iterable[Any], calib_loader: Iterable[Any],
                    num_calib_batches: int = DEFAULT_CALIB_BATCHES) -> float:
    """Accuracy of ``arch`` on ``loader`` after BN recalibration on ``calib_loader`` (model left in eval)."""
    recalibrate_bn(model, arch, calib_loader, num_calib_batches)
    return accuracy(model, arch, loader)


def evaluate_archs(model: nn.Module, archs: dict[str, Arch], splits: Splits, config: TrainConfig,
                   split: str = VAL) -> dict[str, float]:
    """``{"<split>_acc_<name>": accuracy}`` for each named arch, each with its own BN recalibration."""
    def calib():
        return splits.loader(TRAIN, config.batch_size, shuffle=True, seed=config.seed + CALIB_SEED_OFFSET)
    data = splits.loader(split, EVAL_BATCH_SIZE)
    return {f"{split}_acc_{name}": evaluate_subnet(model, arch, data, calib(), config.calib_batches)
            for name, arch in archs.items()}


def train_supernet(model: nn.Module, rule: SamplingRule, splits: Splits, config: TrainConfig, *,
                   eval_archs: dict[str, Arch] | None = None, optimizer: torch.optim.Optimizer | None = None,
                   start_epoch: int = 0, on_epoch: EpochCallback | None = None,
                   stop_epoch: int | None = None) -> list[dict[str, Any]]:
    """Train epochs ``start_epoch+1 .. stop_epoch`` (default ``config.epochs``; the learning-rate
    schedule always spans ``config.epochs``, so stopping early and resuming later is one run); after
    each, evaluate ``eval_archs`` on the val split (default: ``reference_archs(space)``) and call
    ``on_epoch(epoch, metrics)``. Returns the per-epoch metrics. The model is moved to
    ``select_device(config.device)``."""
    configure_threads(config.num_threads)
    model.to(select_device(config.device))
    rule.bind(model)
    optimizer = optimizer or make_optimizer(model, config)
    eval_archs = reference_archs(rule.space) if eval_archs is None else eval_archs
    steps_per_epoch = len(splits.loader(TRAIN, config.batch_size, drop_last=True))
    total = steps_per_epoch * config.epochs
    history = []
    for epoch in range(start_epoch, config.epochs if stop_epoch is None else min(stop_epoch, config.epochs)):
        start = time.perf_counter()
        probs = rule.epoch_weights(len(splits.train))
        loader = splits.loader(TRAIN, config.batch_size, shuffle=True, seed=config.seed, epoch=epoch, drop_last=True,
                               weights=probs, with_indices=rule.observes_samples or probs is not None)
        metrics: dict[str, Any] = {"epoch": epoch + 1}
        metrics.update(train_epoch(model, loader, rule, optimizer, config, epoch * steps_per_epoch, total, probs))
        rule.end_epoch()
        metrics["train_time_s"] = time.perf_counter() - start
        metrics.update(evaluate_archs(model, eval_archs, splits, config))
        metrics["epoch_time_s"] = time.perf_counter() - start
        history.append(metrics)
        if on_epoch is not None:
            on_epoch(epoch + 1, metrics)
    return history
