"""Scratch evaluator: trains every candidate stand-alone, from fresh weights, and scores it.

The network is the space's own (``supernet``'s static subnet of the arch, weights re-initialised:
``raynas.supernet.standalone``), the data a registered dataset (``digits``, ``shapes``, or ``cifar10``
read from a folder of CIFAR batch files given by ``dataset_config.path``), the optimisation
``train`` (``TrainConfig`` fields: ``epochs``, ``lr``, ``batch_size``, ``optimizer`` …). It is an
``EpochEvaluator``: on the tune backend each candidate is one Tune trial reporting after every epoch,
with a checkpoint, so ``backend.scheduler`` (ASHA, Hyperband) stops bad candidates early and a killed
trial resumes from its last epoch. Results:

  * ``metrics``: ``valid_acc`` (percent, after the last epoch trained) and ``epochs`` (epochs trained:
    fewer than ``train.epochs`` when a scheduler stopped the candidate);
  * ``hidden``: ``test_acc``; ``tags``: ``train_loss`` of the last epoch;
  * ``cost_s``: training and evaluation seconds of all its epochs.
It runs inside the backend's trials and uses a GPU when Ray gave the trial one (``backend.
gpus_per_worker``; ``train.device: auto``), with as many torch threads as the trial has CPUs (unless
``train.num_threads``). Each candidate's weights are seeded by ``train.seed`` and its arch's string id,
so an arch scores the same whichever trial or order trains it. Importing this module does not import
torch.
"""
from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

from raynas.errors import RecipeError
from raynas.evaluators.base import EVALUATORS, EpochEvaluator, EpochRun, Result
from raynas.metrics import EPOCHS, TEST_ACC, VALID_ACC
from raynas.space.base import Arch
from raynas.typed import from_dict

TRAIN_LOSS = "train_loss"
Scalar = bool | int | float | str
SEED_BYTES = 4


def arch_seed(seed: int, arch_id: str) -> int:
    """A seed of its own for each (seed, arch): stable across processes (no ``hash()``)."""
    digest = hashlib.blake2b(f"{seed}|{arch_id}".encode(), digest_size=SEED_BYTES).digest()
    return int.from_bytes(digest, "big")


def trial_threads() -> int | None:
    """The CPUs Ray assigned to this process (a trial), as a torch thread count; None outside Ray."""
    import sys

    if "ray" not in sys.modules:
        return None
    import ray

    if not ray.is_initialized():
        return None
    from raynas.serving.server import threads_for

    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
    return threads_for(cpus) if cpus else None


@EVALUATORS.register("scratch")
class ScratchEvaluator(EpochEvaluator):
    """Accuracy of archs trained stand-alone for ``train.epochs`` epochs (see the module docstring)."""

    version = "1"

    @dataclasses.dataclass
    class Config:
        supernet: str | None = None  # whose static subnets are the networks; default: the one serving the space
        supernet_config: dict[str, Scalar] = dataclasses.field(default_factory=dict)
        dataset: str = "digits"
        dataset_config: dict[str, Scalar] = dataclasses.field(default_factory=dict)
        train: dict[str, Scalar | None] = dataclasses.field(default_factory=dict)  # TrainConfig fields

        def validate(self, path: str) -> None:
            """Names and nested options checked against their registries (imports torch)."""
            from raynas.data import DATASETS
            from raynas.supernet import SUPERNETS
            from raynas.supernet.train import TrainConfig

            if self.supernet is not None and self.supernet not in SUPERNETS:
                raise RecipeError(f"{path}.supernet", f"unknown supernet {self.supernet!r}; "
                                  f"known: {', '.join(SUPERNETS.names())}")
            if self.dataset not in DATASETS:
                raise RecipeError(f"{path}.dataset", f"unknown dataset {self.dataset!r}; "
                                  f"known: {', '.join(DATASETS.names())}")
            from_dict(DATASETS.get(self.dataset).Config, dict(self.dataset_config), f"{path}.dataset_config")
            from_dict(TrainConfig, dict(self.train), f"{path}.train")

    def __init__(self, space, config: "ScratchEvaluator.Config | None" = None, config_path: str = "evaluator",
                 *, storage_path: str | None = None) -> None:
        super().__init__(space, config, storage_path=storage_path)
        self.config_path = config_path
        self.supernet_name = self.config.supernet or self._serving(space.name)
        self._splits = None  # loaded on first use, in the process that trains (never pickled)

    def _serving(self, space_name: str) -> str:
        from raynas.supernet import SUPERNETS

        for name in SUPERNETS.names():
            if SUPERNETS.get(name).space_name == space_name:
                return name
        raise RecipeError(f"{self.config_path}.supernet", f"no registered supernet builds networks of space "
                          f"{space_name!r}; name one")

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_splits": None}

    def train_config(self):
        from raynas.supernet.train import TrainConfig

        return from_dict(TrainConfig, dict(self.config.train), f"{self.config_path}.train")

    def max_epochs(self) -> int:
        return self.train_config().epochs

    def metrics(self) -> tuple[str, ...]:
        return (VALID_ACC, EPOCHS)

    def _start(self, arch: Arch, directory: str | None) -> EpochRun:
        from raynas.data import load_dataset
        from raynas.supernet import build_supernet
        from raynas.supernet.standalone import StandaloneRun

        cfg = self.config
        train = self.train_config()
        if train.num_threads is None:
            train = dataclasses.replace(train, num_threads=trial_threads())
        if self._splits is None:
            self._splits = load_dataset(cfg.dataset, dict(cfg.dataset_config))
        supernet = build_supernet(self.supernet_name, self.space, dict(cfg.supernet_config))
        seed = arch_seed(train.seed, self.space.to_str(arch))
        run = StandaloneRun(self.space, arch, supernet, self._splits, train, seed=seed, directory=directory)
        return ScratchRun(run, self.id)


class ScratchRun(EpochRun):
    """An ``EpochRun`` over a ``StandaloneRun``: each epoch's ``EpochMetrics`` as a ``Result``."""

    def __init__(self, run: Any, evaluator_id: str) -> None:
        self.run, self.evaluator_id = run, evaluator_id

    @property
    def epochs_done(self) -> int:  # type: ignore[override]
        return self.run.epochs_done

    def run_epoch(self) -> Result:
        m = self.run.run_epoch()
        return Result(metrics={VALID_ACC: m.valid_acc, EPOCHS: float(m.epoch)}, cost_s=m.elapsed_s,
                      hidden={TEST_ACC: m.test_acc}, evaluator=self.evaluator_id,
                      tags={TRAIN_LOSS: f"{m.train_loss:.5f}"})

    def save(self, directory: str) -> None:
        self.run.save(directory)
