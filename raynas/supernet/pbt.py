"""Population-based training of supernets (Jaderberg et al., 2017) with Ray Tune's
``PopulationBasedTraining`` over the supernet trainable (``raynas.supernet.trainable``).

Each member trains one supernet: in its Tune trial, or — with ``train.workers > 1`` — on that many
Ray Train workers that its trial drives, one Train run per perturbation interval
(``raynas.supernet.ddp_trial``; checkpoints in the same files either way). Every
``perturbation_interval`` epochs the bottom ``quantile`` of members *exploit* a top member — Tune
restores the top member's checkpoint (weights, optimizer and sampler state, as numpy) into the bottom
member — and *explore* by perturbing its hyperparameters: the
learning rate, the in-place-distillation weight ``kd_alpha`` and the sandwich rule's number of random
subnets. Checkpoints are written every epoch and ≥ 4 are kept, so an exploited member's source still
exists. The objective ``PBT_METRIC`` is the mean validation accuracy of the reference subnets (largest,
smallest and seeded random ones) after BN recalibration, i.e. the quality of the whole supernet rather
than one subnet. ``PBTConfig.seed`` seeds every random choice: the members' initial draws, Tune's donor
choice and perturbations, and resampled learning rates. ``run_pbt`` returns the best member's weights
(numpy) and history, ready to publish to a ``ServerPool``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import random
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Iterator, TextIO

import numpy as np
from ray import tune

from raynas import storage
from raynas.errors import RecipeError
from raynas.ray_env import quiet_tune
from raynas.typed import bounded

PBT_METRIC = "val_acc_mean"
VAL_ACC_PREFIX = "val_acc_"
KEEP_CHECKPOINTS = 4
PBT_LOG = "pbt_global.txt"
DDP_RUNS = "-ddp"  # beside the experiment, <name>-ddp: the Ray Train runs of data-parallel members
PERTURBED = ("lr", "kd_alpha", "num_random")  # the hyperparameters PBT explores
PROGRESS_PREFIX = "[raynas] supernet PBT:"
REUSE_WARNING = "Consider boosting PBT performance"  # Tune's nudge; reuse costs reproducibility here


@dataclasses.dataclass
class PBTConfig:
    """Population, schedule and search ranges of the perturbed hyperparameters."""

    population: int = bounded(4, ge=2)
    perturbation_interval: int = bounded(2, ge=1)  # epochs
    quantile_fraction: float = bounded(0.25, gt=0, le=0.5)
    resample_probability: float = bounded(0.25, ge=0, le=1)
    lr_min: float = bounded(0.01, gt=0)
    lr_max: float = bounded(0.3, gt=0)
    kd_alpha_choices: list[float] = dataclasses.field(default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0])
    num_random_choices: list[int] = dataclasses.field(default_factory=lambda: [0, 1, 2, 3])
    # reuse trial actors: ~2x faster on small members (no process start per perturbation), but Tune's
    # synchronous PBT then sometimes clones a donor one iteration early, so runs are not reproducible
    reuse_actors: bool = False
    # a single-process member's resources; a data-parallel member (train.workers > 1) only drives its
    # Ray Train workers, which take train.cpus_per_worker / gpus_per_worker each
    cpus_per_member: float = bounded(1.0, gt=0)
    gpus_per_member: float = bounded(0.0, ge=0)
    seed: int = bounded(0, ge=0)
    max_failures: int = bounded(1, ge=0)  # a member that dies is restored from its last checkpoint
    # members training at once (None: all, or for data-parallel members as many as the cluster's nodes
    # hold the workers of now: a Ray Train run that cannot place its workers times out)
    max_concurrent_members: int | None = bounded(None, ge=1)

    def validate(self, path: str) -> None:
        if self.lr_min > self.lr_max:
            raise RecipeError(f"{path}.lr_min", f"must be <= lr_max ({self.lr_max}), got {self.lr_min}")
        for name in ("kd_alpha_choices", "num_random_choices"):
            if not getattr(self, name):
                raise RecipeError(f"{path}.{name}", "must not be empty")


@dataclasses.dataclass
class PBTResult:
    best_weights: dict[str, np.ndarray]
    best_config: dict[str, Any]
    best_metrics: dict[str, Any]
    histories: list[list[dict[str, Any]]]  # per member, per reported epoch
    num_exploits: int


def pbt_trainable(config: dict[str, Any], ddp_storage: str | None = None, interval: int | None = None) -> None:
    """The supernet trainable, also reporting ``PBT_METRIC`` (mean of the ``val_acc_*`` metrics). A
    member with ``train.workers > 1`` drives Ray Train runs of that many workers, one per
    ``interval`` epochs (``raynas.supernet.ddp_trial``), kept under ``<ddp_storage>/<trial id>``; one
    with a single worker trains here."""
    from raynas.supernet.ddp_trial import run_data_parallel_trial
    from raynas.supernet.trainable import run_supernet_trial

    def report(metrics: dict[str, Any], checkpoint: Any = None) -> None:
        accs = [v for k, v in metrics.items() if k.startswith(VAL_ACC_PREFIX)]
        metrics[PBT_METRIC] = float(np.mean(accs))
        tune.report(metrics, checkpoint=checkpoint)

    if member_workers(config) > 1:
        runs = storage.join(ddp_storage, tune.get_context().get_trial_id()) if ddp_storage else None
        run_data_parallel_trial(config, report, tune.get_checkpoint(), runs, interval)
    else:
        run_supernet_trial(config, report=report, checkpoint=tune.get_checkpoint())


def member_workers(trial_config: dict[str, Any]) -> int:
    """The Ray Train workers of one member (``train.workers``; 1: it trains in its Tune trial)."""
    return int(trial_config.get("train", {}).get("workers", 1))


def concurrent_members(trial_config: dict[str, Any], pbt: PBTConfig) -> int | None:
    """``pbt.max_concurrent_members``, else None (no limit) for single-process members, or for
    data-parallel ones how many members' workers the cluster holds now (at least one)."""
    from raynas.supernet.ddp import worker_slots
    from raynas.supernet.train import TrainConfig
    from raynas.typed import from_dict

    if pbt.max_concurrent_members is not None:
        return pbt.max_concurrent_members
    workers = member_workers(trial_config)
    if workers == 1:
        return None
    train = from_dict(TrainConfig, dict(trial_config.get("train", {})), "train")
    return max(1, min(pbt.population, worker_slots(train) // workers))


def member_resources(trial_config: dict[str, Any], pbt: PBTConfig) -> dict[str, float]:
    """A member's Tune trial resources: ``cpus_per_member``/``gpus_per_member``, or none when it only
    drives data-parallel workers (which take ``train.cpus_per_worker``/``gpus_per_worker`` each)."""
    from raynas.supernet.ddp_trial import TRIAL_RESOURCES

    if member_workers(trial_config) > 1:
        return dict(TRIAL_RESOURCES)
    return {"cpu": pbt.cpus_per_member, "gpu": pbt.gpus_per_member}


def _mutations(pbt: PBTConfig, rng: np.random.Generator) -> dict[str, Any]:
    """Explore space: a resampled lr is drawn log-uniformly from ``rng`` (a Tune ``Domain`` would draw
    from numpy's global RNG); lists are chosen from, or stepped to a neighbour, by Tune."""
    low, high = np.log(pbt.lr_min), np.log(pbt.lr_max)
    return {"train": {"lr": lambda: float(np.exp(rng.uniform(low, high))), "kd_alpha": list(pbt.kd_alpha_choices)},
            "sampling_config": {"num_random": list(pbt.num_random_choices)}}


def _initial_space(trial_config: dict[str, Any], pbt: PBTConfig) -> dict[str, Any]:
    """The trial config with the perturbed hyperparameters drawn per member (seeded by ``pbt.seed``
    through the search algorithm's ``random_state``)."""
    space = {k: (dict(v) if isinstance(v, dict) else v) for k, v in trial_config.items()}
    space["train"] = {**space.get("train", {}), "lr": tune.loguniform(pbt.lr_min, pbt.lr_max),
                      "kd_alpha": tune.choice(list(pbt.kd_alpha_choices))}
    space["sampling_config"] = {**space.get("sampling_config", {}),
                                "num_random": tune.choice(list(pbt.num_random_choices))}
    return space


def run_pbt(trial_config: dict[str, Any], pbt: PBTConfig, storage_path: str | Path, name: str = "supernet-pbt",
            progress: TextIO | None = sys.stderr) -> PBTResult:
    """Train ``pbt.population`` supernets with PBT; needs a connected Ray (``ensure_ray``). A line per
    epoch round goes to ``progress`` (None: silent); Tune's own console output is off."""
    from ray.tune.schedulers import PopulationBasedTraining
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from raynas.supernet.trainable import read_checkpoint

    history, root = History(progress), storage.resolve(storage_path)
    scheduler = PopulationBasedTraining(
        time_attr="training_iteration", perturbation_interval=pbt.perturbation_interval,
        hyperparam_mutations=_mutations(pbt, np.random.default_rng(pbt.seed)), quantile_fraction=pbt.quantile_fraction,
        resample_probability=pbt.resample_probability, synch=True)
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(pbt_trainable, ddp_storage=storage.join(root, f"{name}{DDP_RUNS}"),
                                                 interval=pbt.perturbation_interval),
                            member_resources(trial_config, pbt)),
        param_space=_initial_space(trial_config, pbt),
        tune_config=tune.TuneConfig(scheduler=scheduler, num_samples=pbt.population, metric=PBT_METRIC,
                                    mode="max", reuse_actors=pbt.reuse_actors,
                                    max_concurrent_trials=concurrent_members(trial_config, pbt),
                                    search_alg=BasicVariantGenerator(random_state=pbt.seed)),
        run_config=tune.RunConfig(name=name, storage_path=root, verbose=0,
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=KEEP_CHECKPOINTS),
                                  failure_config=tune.FailureConfig(max_failures=pbt.max_failures),
                                  callbacks=[history]))
    if progress is not None:
        epochs = trial_config.get("train", {}).get("epochs", "?")
        where = storage.join(root, name)
        progress.write(f"{PROGRESS_PREFIX} {pbt.population} members x {epochs} epochs, exploit/explore every "
                       f"{pbt.perturbation_interval}; Tune experiment in {where}\n")
    with _seeded_pbt_random(pbt.seed), quiet_tune(trial_loggers=True), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=REUSE_WARNING)
        grid = tuner.fit()
    best = grid.get_best_result(metric=PBT_METRIC, mode="max", scope="last")
    with best.checkpoint.as_directory() as directory:
        weights, _ = read_checkpoint(directory)
    histories = list(history.results.values())
    return PBTResult(weights, best.config, best.metrics, histories, count_exploits(grid.experiment_path))


@contextlib.contextmanager
def _seeded_pbt_random(seed: int) -> Iterator[None]:
    """Tune's PBT picks donors and perturbations with the module ``random`` of
    ``ray.tune.schedulers.pbt``; within the block that name is a ``random.Random(seed)`` of its own.
    (Seeding the global ``random`` is not enough: other code in the driver draws from it too, a
    timing-dependent number of times.)"""
    from ray.tune.schedulers import pbt as tune_pbt

    saved = tune_pbt.random
    tune_pbt.random = random.Random(seed)
    try:
        yield
    finally:
        tune_pbt.random = saved


class History(tune.Callback):
    """A Tune callback keeping every reported result per trial, in the driver (independent of Tune's
    on-disk loggers); with ``progress``, it writes a line each time every member has finished one more
    epoch."""

    def __init__(self, progress: TextIO | None = None) -> None:
        self.stream = progress
        self.results: dict[str, list[dict[str, Any]]] = {}
        self.latest: dict[str, dict[str, Any]] = {}
        self.round = 0
        self.t0 = time.perf_counter()

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        flat = {k: v for k, v in result.items() if isinstance(v, (int, float, str))}
        flat.update({f"config/{k}/{kk}": vv for k, v in trial.config.items() if isinstance(v, dict)
                     for kk, vv in v.items() if isinstance(vv, (int, float))})
        self.results.setdefault(trial.trial_id, []).append(flat)
        self.latest[trial.trial_id] = flat
        done = min(r.get("epoch", 0) for r in self.latest.values()) if len(self.latest) == len(trials) else 0
        if self.stream is not None and done > self.round:
            self.round = done
            self._say(trial.config.get("train", {}).get("epochs"), len(trials))

    def _say(self, epochs: int | None, members: int) -> None:
        best = max(self.latest.values(), key=lambda r: r.get(PBT_METRIC, float("-inf")))
        knobs = ", ".join(f"{k.rsplit('/', 1)[1]} {v:.3g}" for k, v in best.items() if k.startswith("config/")
                          and k.rsplit("/", 1)[1] in PERTURBED)
        self.stream.write(f"{PROGRESS_PREFIX} epoch {self.round}/{epochs or '?'} of {members} members; best "
                          f"{PBT_METRIC} {best.get(PBT_METRIC, float('nan')):.1%} ({knobs}); "
                          f"{time.perf_counter() - self.t0:.0f} s\n")
        self.stream.flush()

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles its callbacks with the experiment state: the console stream stays here."""
        return {**self.__dict__, "stream": None}


def count_exploits(experiment: str | Path) -> int:
    """Exploit steps Tune's PBT logged (one JSON line per exploit in ``pbt_global.txt``) in the
    experiment at ``experiment`` (a path or a storage URI)."""
    log = storage.read_text(storage.join(str(experiment), PBT_LOG))
    return len(log.splitlines()) if log else 0
