"""CIFAR-10 from its python-format batches (``cifar-10-python.tar.gz``, extracted).

``Config.path`` is the folder holding ``data_batch_1`` … ``data_batch_5`` and ``test_batch`` (or its
parent containing ``cifar-10-batches-py``). Each file is a pickled dict with ``b"data"`` (uint8,
``N x 3072``, channel-major 32x32 RGB) and ``b"labels"`` (N ints). The validation split is
``val_size`` images drawn from the training batches with ``seed``; ``limit_train`` keeps only the first
so many of the rest (quick runs). Images are normalised with the usual CIFAR-10 channel statistics.
Only load files you trust: the format is a pickle.
"""
from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import numpy as np
import torch

from raynas.data.base import DATASETS, DatasetMissingError, DatasetPathError, ImageDataset, NormalizedImages, Splits
from raynas.typed import bounded

TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
SUBDIR = "cifar-10-batches-py"
DATA_KEY, LABELS_KEY = b"data", b"labels"
CHANNELS, RESOLUTION, CLASSES = 3, 32, 10
PIXEL_MAX = 255.0
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
DOWNLOAD_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


def find_batches(path: str) -> Path:
    """The folder holding all batch files: ``path`` itself or ``path/cifar-10-batches-py``."""
    root = Path(path).expanduser()
    for folder in (root, root / SUBDIR):
        if all((folder / f).is_file() for f in TRAIN_FILES + (TEST_FILE,)):
            return folder
    missing = [f for f in TRAIN_FILES + (TEST_FILE,) if not (root / f).is_file()]
    raise DatasetMissingError(
        f"cifar10: no CIFAR-10 python batches at {str(root)!r} (missing {', '.join(missing)}); download "
        f"{DOWNLOAD_URL}, extract it and set dataset_config.path to the '{SUBDIR}' folder")


def read_batch(file: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 (N, 3, 32, 32), labels int64 (N,))`` of one batch file."""
    with open(file, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    if not isinstance(batch, dict) or DATA_KEY not in batch or LABELS_KEY not in batch:
        raise ValueError(f"cifar10: {file} is not a CIFAR-10 python batch (needs b'data' and b'labels')")
    data = np.asarray(batch[DATA_KEY], dtype=np.uint8)
    labels = np.asarray(batch[LABELS_KEY], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != CHANNELS * RESOLUTION ** 2 or len(data) != len(labels):
        raise ValueError(f"cifar10: {file} has data {data.shape} and {len(labels)} labels; "
                         f"expected N x {CHANNELS * RESOLUTION ** 2} and N labels")
    return data.reshape(-1, CHANNELS, RESOLUTION, RESOLUTION), labels


@DATASETS.register("cifar10")
class Cifar10(ImageDataset):
    """CIFAR-10 (50,000 train incl. ``val_size`` validation, 10,000 test) from a user path."""

    @dataclasses.dataclass
    class Config:
        path: str = ""
        seed: int = bounded(0, ge=0)
        val_size: int = bounded(5000, ge=1)
        limit_train: int | None = bounded(None, ge=1)

        def validate(self, path: str) -> None:
            """The batch files must be there (checked when the recipe is read, not in a Ray task)."""
            try:
                find_batches(self.path)
            except DatasetMissingError as err:
                raise DatasetPathError(f"{path}.path", str(err)) from None

    def load(self) -> Splits:
        cfg = self.config
        folder = find_batches(cfg.path)
        parts = [read_batch(folder / f) for f in TRAIN_FILES]
        images = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        if cfg.val_size >= len(labels):
            raise ValueError(f"cifar10: val_size {cfg.val_size} must be below the {len(labels)} training images")
        order = np.random.default_rng(cfg.seed).permutation(len(labels))
        val, train = order[: cfg.val_size], order[cfg.val_size :][: cfg.limit_train]
        test_images, test_labels = read_batch(folder / TEST_FILE)

        def part(x: np.ndarray, y: np.ndarray) -> NormalizedImages:
            return NormalizedImages(torch.from_numpy(x), torch.from_numpy(y), 1.0 / PIXEL_MAX, MEAN, STD)

        return Splits(part(images[train], labels[train]), part(images[val], labels[val]),
                      part(test_images, test_labels), in_channels=CHANNELS, resolution=RESOLUTION,
                      num_classes=CLASSES)
