"""What a supernet server serves: ``ModelSpec`` (space, supernet, dataset, evaluation protocol) and the
fixed evaluation data (``EvalData``) every replica scores with.

Contract:
  * ``ModelSpec`` is a small picklable value; ``build_model(spec)`` builds the same (untrained) supernet
    in any process, and ``EvalData.build(spec)`` the same arrays (seeded splits, seeded calibration
    shuffle), so two processes scoring one arch with one set of weights get one result.
  * The calibration batches are the first ``calib_batches`` batches of
    ``splits.loader("train", calib_batch_size, shuffle=True, seed=calib_seed)`` — exactly what
    ``raynas.supernet.train.evaluate_archs`` uses when ``calib_seed = train seed + CALIB_SEED_OFFSET``
    and ``calib_batch_size`` is the training batch size (``ModelSpec.for_training`` sets both).
  * ``EvalData`` holds numpy arrays only (no tensors, no pickled modules): it is ``ray.put`` once and
    shared by every replica through the object store.
Torch is imported lazily (the router imports this module and never needs torch).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import numpy as np

from raynas.devices import AUTO

DEFAULT_CALIB_BATCHES = 8  # = raynas.supernet.bn.DEFAULT_CALIB_BATCHES (kept torch-free here)
DEFAULT_CALIB_BATCH_SIZE = 64
CALIB_SEED_OFFSET = 7919  # = raynas.supernet.train.CALIB_SEED_OFFSET
DEFAULT_EVAL_BATCH_SIZE = 256


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Everything a replica needs to rebuild the supernet and its evaluation data (no weights)."""

    space: str = "mbv3"
    space_config: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    supernet: str = "mbv3"
    supernet_config: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    dataset: str = "digits"
    dataset_config: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    calib_batches: int = DEFAULT_CALIB_BATCHES
    calib_batch_size: int = DEFAULT_CALIB_BATCH_SIZE
    calib_seed: int = CALIB_SEED_OFFSET
    eval_batch_size: int = DEFAULT_EVAL_BATCH_SIZE
    device: str = AUTO  # "auto" (CUDA when the replica has a GPU), "cpu" or "cuda"

    @classmethod
    def for_training(cls, train_seed: int = 0, train_batch_size: int = DEFAULT_CALIB_BATCH_SIZE,
                     calib_batches: int = DEFAULT_CALIB_BATCHES, **fields: Any) -> "ModelSpec":
        """The spec whose calibration batches equal those ``train_supernet`` evaluates with."""
        return cls(calib_batches=calib_batches, calib_batch_size=train_batch_size,
                   calib_seed=train_seed + CALIB_SEED_OFFSET, **fields)

    def build_space(self):
        """The search space (numpy only)."""
        from raynas.space import SPACES
        from raynas.typed import from_dict

        cls = SPACES.get(self.space)
        return cls(from_dict(cls.Config, dict(self.space_config), "space"))


def build_model(spec: ModelSpec):
    """``(space, supernet)`` for ``spec``, the supernet freshly initialised (its config's seed)."""
    from raynas.supernet import build_supernet

    space = spec.build_space()
    return space, build_supernet(spec.supernet, space, dict(spec.supernet_config))


def load_splits(spec: ModelSpec):
    """The dataset's seeded ``Splits``."""
    from raynas.data import load_dataset

    return load_dataset(spec.dataset, dict(spec.dataset_config))


@dataclasses.dataclass(frozen=True)
class EvalData:
    """Normalised float32 inputs and int64 labels: calibration inputs (a list of batches), val, test."""

    calib: tuple[np.ndarray, ...]
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray

    @classmethod
    def build(cls, spec: ModelSpec, splits: Any = None) -> "EvalData":
        """Arrays for ``spec`` (loads the dataset unless ``splits`` is given)."""
        import itertools

        from raynas.data.base import TEST, TRAIN, VAL

        splits = splits if splits is not None else load_splits(spec)
        loader = splits.loader(TRAIN, spec.calib_batch_size, shuffle=True, seed=spec.calib_seed)
        calib = tuple(x.numpy() for x, _ in itertools.islice(loader, spec.calib_batches))
        if not calib:
            raise ValueError(f"dataset {spec.dataset!r} gave no calibration batch")
        val_x, val_y = splits.split(VAL).tensors()
        test_x, test_y = splits.split(TEST).tensors()
        return cls(calib, val_x.numpy(), val_y.numpy(), test_x.numpy(), test_y.numpy())

    @property
    def nbytes(self) -> int:
        arrays = (*self.calib, self.val_x, self.val_y, self.test_x, self.test_y)
        return int(sum(a.nbytes for a in arrays))


def check_fits(space: Any, data: EvalData) -> None:
    """Raise ``ValueError`` when the data's images do not fit the space's skeleton (channels, size)."""
    cfg = getattr(space, "config", None)
    shape = data.val_x.shape[1:]
    want = tuple(getattr(cfg, k) for k in ("in_channels", "resolution", "resolution") if hasattr(cfg, k))
    if len(want) == 3 and tuple(shape) != want:
        raise ValueError(f"dataset images are {tuple(shape)} but space {space.name!r} expects {want} "
                         "(in_channels, resolution, resolution)")
