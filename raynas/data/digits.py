"""scikit-learn's handwritten digits: 1,797 8x8 grey images (values 0..16) of 10 classes.

Split with a fixed seed, stratified by class, into train / val / test (``val_fraction`` and
``test_fraction`` of all images); pixels are scaled to [0, 1] and standardised with the train split's
mean and std. Small enough to train a supernet in minutes on two CPU cores.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from raynas.data.base import DATASETS, ImageDataset, NormalizedImages, Splits
from raynas.typed import bounded

DIGITS_MAX = 16.0
DIGITS_RESOLUTION = 8
DIGITS_CLASSES = 10


@DATASETS.register("digits")
class Digits(ImageDataset):
    """``sklearn.datasets.load_digits`` as ``(N, 1, 8, 8)`` uint8 images with fixed-seed splits."""

    @dataclasses.dataclass
    class Config:
        seed: int = bounded(0, ge=0)
        val_fraction: float = bounded(0.15, gt=0.0, lt=0.5)
        test_fraction: float = bounded(0.15, gt=0.0, lt=0.5)

    def load(self) -> Splits:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        cfg = self.config
        data = load_digits()
        images = data.images.astype(np.uint8).reshape(-1, 1, DIGITS_RESOLUTION, DIGITS_RESOLUTION)
        labels = data.target.astype(np.int64)
        idx = np.arange(len(labels))
        rest, test = train_test_split(idx, test_size=cfg.test_fraction, random_state=cfg.seed, stratify=labels)
        val_share = cfg.val_fraction / (1.0 - cfg.test_fraction)
        train, val = train_test_split(rest, test_size=val_share, random_state=cfg.seed, stratify=labels[rest])
        train_pixels = images[train].astype(np.float64) / DIGITS_MAX
        mean, std = (float(train_pixels.mean()),), (float(train_pixels.std()),)

        def part(ix: np.ndarray) -> NormalizedImages:
            return NormalizedImages(torch.from_numpy(images[ix]), torch.from_numpy(labels[ix]),
                                    1.0 / DIGITS_MAX, mean, std)

        return Splits(part(train), part(val), part(test), in_channels=1,
                      resolution=DIGITS_RESOLUTION, num_classes=DIGITS_CLASSES)
