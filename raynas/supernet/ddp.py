"""Data-parallel supernet training with Ray Train: ``TorchTrainer`` workers, PyTorch DDP, one supernet.

``train.workers: N`` (``TrainConfig.workers``) trains one supernet on N Ray Train workers
(``fit_ddp``); every other part of raynas consumes the result unchanged.

Contract:
  * **Batch rule.** ``train.batch_size`` is the *global* batch; it must be divisible by ``workers``
    (else ``RecipeError`` on ``train.batch_size``). Every worker builds the same seeded global batches
    as ``train_supernet`` (same loader, seed and epoch, PA&DA's weighted draw included) and takes its
    contiguous slice of ``batch_size / N`` samples of each (``ShardedBatches``: index-level sharding,
    only its own samples are loaded). DDP averages the gradients over workers, so the gradient equals
    the single-process mean over the global batch — with one difference by default, as in every
    multi-GPU supernet training that keeps plain BatchNorm (OFA, BigNAS without SyncBN): BatchNorm
    normalises with each worker's shard's statistics. N workers therefore equal one process that runs
    each global batch as N BatchNorm "ghost batches" (tested: ``tests/supernet/test_ddp.py``); N = 1
    is ``train_supernet`` exactly. With ``train.sync_bn`` BatchNorm uses the global batch's statistics
    (``raynas.supernet.sync_bn``): N workers then equal one plain process on the global batches.
    Otherwise running BN statistics are each worker's own (``broadcast_buffers`` off: no buffer
    traffic); rank 0's are checkpointed, and every subnet is BN-recalibrated before it is scored
    anyway (``raynas.supernet.bn``).
  * **Same subnets everywhere.** Every worker builds the sampling rule with the same seed and calls
    ``next_step()`` once per step, so all draw the same archs. Rules that learn keep identical state:
    PA&DA's path statistics are read from the all-reduced gradients (equal on every worker), and its
    per-sample statistics are all-gathered each step (``GatheredSamples``), so each worker's rule sees
    the whole global batch, as the single process does.
  * **DDP with weight sharing.** One optimizer step trains several subnets (the sandwich's largest,
    smallest and random ones, with in-place distillation): one forward/backward per subnet, gradients
    accumulated. All passes but the last run under ``no_sync()``; the last backward all-reduces the
    accumulated sum once per step (``raynas.supernet.train.pass_context``). Parameters that no subnet
    of the step touched (blocks beyond every sampled depth) have no gradient, so DDP must be built with
    ``find_unused_parameters=True``: its used-parameter bitmap accumulates over the ``no_sync`` passes
    and is all-reduced, a parameter used by any pass is reduced with its accumulated gradient, and one
    unused on every worker keeps ``grad = None`` — as in the single process, where SGD then skips it.
    ``static_graph`` does not apply (the graph changes every step), and DDP's requirement that every
    worker run the same passes in the same order holds because all draw the same subnets.
  * **Checkpoints.** After every epoch rank 0 writes ``raynas.supernet.trainable.write_checkpoint``'s
    files (weights.npz, optimizer.npz, state.json) and every worker calls ``ray.train.report`` (rank 0
    with the checkpoint): serving, PBT and few-shot splits read them unchanged. A failed worker group
    (``FailureConfig(max_failures)``) restarts from ``ray.train.get_checkpoint()``; data order and
    subnets are functions of (seed, epoch) and the rule's saved state, so the run ends as an
    uninterrupted one.
  * **Devices.** ``gpus_per_worker > 0``: ``ScalingConfig(use_gpu=True)``, nccl, each worker on the
    CUDA device Ray assigned it (``ray.train.torch.get_device()``); otherwise gloo on CPU.
    ``cpus_per_worker`` is each worker's CPU share (fractions allowed; torch threads: ``num_threads``,
    else ``floor(cpus_per_worker)``, at least 1). Ray Train's controller takes no CPU (Train V2).
"""
from __future__ import annotations

import dataclasses
import logging
import math
import tempfile
import time
import uuid
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from raynas.data.base import TRAIN
from raynas.errors import RecipeError
from raynas.metrics import WEIGHTS_VERSION
from raynas.supernet.sync_bn import global_batch_statistics
from raynas.supernet.train import (
    TrainConfig,
    apply_hyperparams,
    configure_threads,
    evaluate_archs,
    make_optimizer,
    train_epoch,
)
from raynas.supernet.trial import build_trial
from raynas.typed import bounded, from_dict

log = logging.getLogger(__name__)

GLOO, NCCL = "gloo", "nccl"
RUN_PREFIX = "raynas-ddp-"
WORLD_RANK_ZERO = 0
EpochHook = Callable[[int, int], None]  # (epochs done, world rank), after the epoch's report


@dataclasses.dataclass
class DDPRun:
    """What the workers train: ``trial`` (a ``SupernetTrialConfig`` as a dict, its ``train.workers``
    the number of workers), whether each epoch evaluates the tracked archs (on rank 0) and ``until``:
    the epochs done at which this run ends (None: ``train.epochs``; a PBT member trains to its next
    perturbation point, the learning-rate schedule still spanning ``train.epochs``) and ``start_from``:
    the checkpoint the workers load unless the run has one of its own (after a worker failure), the
    pattern Ray Train V2 gives for ``resume_from_checkpoint``."""

    trial: dict[str, Any] = dataclasses.field(default_factory=dict)
    evaluate: bool = True
    max_failures: int = bounded(1, ge=0)
    until: int | None = None
    start_from: Any = None  # a checkpoint of ``write_checkpoint``'s files to start from (a ``ray.train.Checkpoint``)


@dataclasses.dataclass
class DDPResult:
    """The last checkpoint (and its weights and state), the metrics of the epochs the last worker group
    trained (rank 0's; after a restore, those after its checkpoint) and the run's storage path."""

    arrays: dict[str, np.ndarray]
    state: dict[str, Any]
    history: list[dict[str, Any]]
    path: str
    checkpoint: Any = None  # the last ``ray.train.Checkpoint``


def local_batch_size(config: TrainConfig, path: str = "train") -> int:
    """Each worker's batch: ``batch_size / workers`` (``RecipeError`` on ``<path>.batch_size`` unless it divides)."""
    if config.batch_size % config.workers:
        raise RecipeError(f"{path}.batch_size", f"the global batch {config.batch_size} must be divisible by "
                          f"{path}.workers ({config.workers}): each worker takes an equal shard")
    return config.batch_size // config.workers


def backend_for(config: TrainConfig) -> str:
    """``nccl`` when the workers get GPUs, else ``gloo``."""
    return NCCL if config.gpus_per_worker > 0 else GLOO


def worker_threads(config: TrainConfig) -> int:
    return config.num_threads or max(1, math.floor(config.cpus_per_worker))


class ShardedBatches(Sampler[list[int]]):
    """Worker ``rank``'s contiguous slice of each batch of index lists ``batches`` (equal shards)."""

    def __init__(self, batches: Any, rank: int, world: int) -> None:
        self.batches, self.rank, self.world = batches, rank, world

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.batches:
            size = len(batch) // self.world
            yield list(batch)[self.rank * size:(self.rank + 1) * size]

    def __len__(self) -> int:
        return len(self.batches)


def shard_loader(loader: DataLoader, rank: int, world: int) -> DataLoader:
    """``loader``'s batches, each cut to worker ``rank``'s shard; the same generator is passed on, so
    the global order is the one ``loader`` itself would give."""
    return DataLoader(loader.dataset, batch_sampler=ShardedBatches(loader.batch_sampler, rank, world),
                      generator=loader.generator)


class GatheredSamples:
    """A sampling rule whose ``observe_samples`` sees the samples of every worker (``all_gather``, in rank
    order), so each worker's rule keeps the statistics of the whole global batch. Everything else is
    the wrapped rule's."""

    def __init__(self, rule: Any, device: torch.device) -> None:
        self._rule, self._device = rule, device

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._rule, name)

    def observe_samples(self, indices: np.ndarray, grad_norms: np.ndarray) -> None:
        import torch.distributed as dist

        gathered = []
        for values, dtype in ((indices, torch.int64), (grad_norms, torch.float64)):
            local = torch.as_tensor(np.asarray(values), dtype=dtype, device=self._device)
            parts = [torch.empty_like(local) for _ in range(dist.get_world_size())]
            dist.all_gather(parts, local)
            gathered.append(torch.cat(parts).cpu().numpy())
        self._rule.observe_samples(gathered[0], gathered[1])


@dataclasses.dataclass
class Worker:
    """One Ray Train worker's training state (``setup_worker``): the trial, its supernet on the worker's
    device and the DDP wrapper around it, the rule the epochs call (``GatheredSamples`` for rules that
    observe samples), the optimizer, rank, world size and the epochs the restored checkpoint had done."""

    trial: Any
    model: Any
    ddp: Any
    rule: Any
    optimizer: Any
    rank: int
    world: int
    start: int


def setup_worker(run: DDPRun) -> Worker:
    """Inside a Ray Train worker: build ``run.trial``, restore ``ray.train.get_checkpoint()`` (if any)
    and wrap the supernet in ``DistributedDataParallel`` (see the module docstring)."""
    import ray.train
    import ray.train.torch
    from torch.nn.parallel import DistributedDataParallel

    from raynas.supernet.trainable import restore_checkpoint

    context = ray.train.get_context()
    device = ray.train.torch.get_device()
    trial = build_trial(run.trial)
    configure_threads(worker_threads(trial.config.train))
    model = trial.model.to(device)
    trial.rule.bind(model)
    optimizer = make_optimizer(model, trial.config.train)
    start, checkpoint = 0, ray.train.get_checkpoint() or run.start_from
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            start = restore_checkpoint(directory, model, optimizer, trial.rule)
        apply_hyperparams(optimizer, trial.config.train)  # a PBT exploit's config wins over the donor's
    ddp = DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None,
                                  find_unused_parameters=True, broadcast_buffers=False)
    rule = GatheredSamples(trial.rule, device) if trial.rule.observes_samples else trial.rule
    return Worker(trial, model, ddp, rule, optimizer, context.get_world_rank(), context.get_world_size(), start)


def train_worker(config: dict[str, Any], after_epoch: EpochHook | None = None) -> list[dict[str, Any]]:
    """Ray Train's ``train_loop_per_worker``: ``config`` is a ``DDPRun`` as a dict. Trains epochs
    after the restored checkpoint's (if any) to ``train.epochs`` (or ``until``), reporting each (see the module
    docstring), and returns their metrics; ``after_epoch(epochs_done, rank)`` runs after each report
    (tests kill a worker there)."""
    run = from_dict(DDPRun, config, "ddp")
    w = setup_worker(run)
    cfg, history = w.trial.config.train, []
    for epoch in range(w.start, min(cfg.epochs, run.until or cfg.epochs)):
        metrics = train_one_epoch(w, epoch)
        if run.evaluate and w.rank == WORLD_RANK_ZERO:
            metrics.update(evaluate_archs(w.model, w.trial.eval_archs, w.trial.splits, cfg))
        _report(metrics, w.model, w.optimizer, w.trial.rule, epoch + 1, w.rank)
        history.append(metrics)
        if after_epoch is not None:
            after_epoch(epoch + 1, w.rank)
    return history


def epoch_batches(w: Worker, epoch: int, probs: np.ndarray | None) -> DataLoader:
    """Worker ``w``'s shards of epoch ``epoch``'s global batches (as ``train_supernet`` draws them)."""
    cfg, splits = w.trial.config.train, w.trial.splits
    loader = splits.loader(TRAIN, cfg.batch_size, shuffle=True, seed=cfg.seed, epoch=epoch, drop_last=True,
                           weights=probs, with_indices=w.rule.observes_samples or probs is not None)
    return shard_loader(loader, w.rank, w.world)


def train_one_epoch(w: Worker, epoch: int) -> dict[str, Any]:
    """One epoch of worker ``w``'s shards; the metrics ``train_supernet`` reports (loss/accuracy of
    this worker's shards) plus ``workers`` and ``samples_per_s`` (global samples per second)."""
    cfg, splits = w.trial.config.train, w.trial.splits
    start = time.perf_counter()
    steps_per_epoch = len(splits.loader(TRAIN, cfg.batch_size, drop_last=True))
    probs = w.rule.epoch_weights(len(splits.train))
    metrics: dict[str, Any] = {"epoch": epoch + 1, "workers": w.world}
    with global_batch_statistics(w.model, enabled=cfg.sync_bn):
        metrics.update(train_epoch(w.ddp, epoch_batches(w, epoch, probs), w.rule, w.optimizer, cfg,
                                   epoch * steps_per_epoch, steps_per_epoch * cfg.epochs, probs))
    w.rule.end_epoch()
    metrics["train_time_s"] = time.perf_counter() - start
    metrics["samples_per_s"] = metrics["steps"] * cfg.batch_size / max(metrics["train_time_s"], 1e-9)
    return metrics


def _report(metrics: dict[str, Any], model: Any, optimizer: Any, rule: Any, epochs_done: int, rank: int) -> None:
    """Every worker reports; rank 0 attaches the checkpoint (``write_checkpoint``'s files)."""
    import ray.train

    from raynas.supernet.trainable import write_checkpoint

    if rank != WORLD_RANK_ZERO:
        ray.train.report(metrics)
        return
    with tempfile.TemporaryDirectory(prefix=RUN_PREFIX) as directory:
        metrics[WEIGHTS_VERSION] = write_checkpoint(directory, model, optimizer, rule, epochs_done)
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(directory))


def scaling_config(config: TrainConfig):
    """Ray Train's ``ScalingConfig``: ``workers`` workers of ``cpus_per_worker`` CPUs (and GPUs)."""
    from ray.train import ScalingConfig

    resources = {"CPU": config.cpus_per_worker, **({"GPU": config.gpus_per_worker} if config.gpus_per_worker else {})}
    return ScalingConfig(num_workers=config.workers, use_gpu=config.gpus_per_worker > 0,
                         resources_per_worker=resources)


def fit_ddp(run: DDPRun, storage_path: str | None = None, name: str | None = None,
            loop: Callable[[dict[str, Any]], None] = train_worker) -> DDPResult:
    """Train ``run`` with a ``TorchTrainer`` (joining Ray if needed) under ``storage_path`` (default: a
    fresh temporary directory; on a multi-node cluster give shared storage) as experiment ``name``;
    returns the last checkpoint's weights. ``loop``: the per-worker function (tests wrap
    ``train_worker``).
    Raises ``RuntimeError`` when training fails beyond ``run.max_failures``."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from raynas.ray_env import ensure_ray
    from raynas.supernet.trainable import read_checkpoint

    cfg = from_dict(TrainConfig, dict(run.trial.get("train", {})), "train")
    local_batch_size(cfg)
    ensure_ray()
    _warn_if_short(cfg)
    storage = storage_path or tempfile.mkdtemp(prefix=RUN_PREFIX)
    trainer = TorchTrainer(
        loop, train_loop_config=dataclasses.asdict(run), scaling_config=scaling_config(cfg),
        torch_config=TorchConfig(backend=backend_for(cfg)),
        run_config=RunConfig(name=name or f"{RUN_PREFIX}{uuid.uuid4().hex[:12]}", storage_path=storage,
                             failure_config=FailureConfig(max_failures=run.max_failures),
                             checkpoint_config=CheckpointConfig(num_to_keep=2)))
    result = trainer.fit()
    if result.error is not None or result.checkpoint is None:
        raise RuntimeError(f"data-parallel supernet training failed: {result.error!r}")
    with result.checkpoint.as_directory() as directory:
        arrays, state = read_checkpoint(directory)
    return DDPResult(arrays, state, list(result.return_value or []), str(result.path), result.checkpoint)


def _warn_if_short(config: TrainConfig) -> None:
    """A warning (Ray Train then waits, e.g. for an autoscaler) when the cluster cannot hold every worker now."""
    fits = worker_slots(config)
    if fits < config.workers:
        log.warning("train.workers: %d workers of %s do not fit the Ray cluster now (room for %d); Ray Train "
                    "waits for resources", config.workers, worker_need(config), fits)


def worker_need(config: TrainConfig) -> dict[str, float]:
    from raynas.ray_env import RAY_CPU, RAY_GPU

    return {RAY_CPU: config.cpus_per_worker, RAY_GPU: config.gpus_per_worker}


def worker_slots(config: TrainConfig) -> int:
    """How many workers of ``config``'s shape the connected cluster's nodes hold in all (now)."""
    from raynas.ray_env import node_resources

    need = worker_need(config)
    return sum(min(int(node.get(r, 0.0) // a) for r, a in need.items() if a > 0) for node in node_resources())


def trial_from_spec(spec: Any, sampling: str, sampling_config: Mapping[str, Any],
                    train: Mapping[str, Any]) -> dict[str, Any]:
    """The ``SupernetTrialConfig`` (as a dict) of a serving ``ModelSpec`` trained with ``sampling``/``train``."""
    return {"space": spec.space, "space_config": dict(spec.space_config), "supernet": spec.supernet,
            "supernet_config": dict(spec.supernet_config), "sampling": sampling,
            "sampling_config": dict(sampling_config), "dataset": spec.dataset,
            "dataset_config": dict(spec.dataset_config), "train": dict(train)}
