"""Datasets for supernet training, registered by name in ``DATASETS``.

Contract: ``cls(config).load()`` returns ``Splits`` — fixed (seeded) train/val/test splits of images
``(N, C, R, R)`` stored compactly (e.g. uint8) and normalised on access, plus the metadata a
supernet needs (channels, resolution, classes). ``Splits.loader(split, batch_size, ...)`` gives a
``DataLoader`` of ``(float32 images, int64 labels)`` (plus the int64 sample indices with
``with_indices``); shuffling, and weighted sampling with replacement (``weights``), is seeded per
epoch, so a resumed run sees the same batches. Missing data raises ``DatasetMissingError`` saying
what to put where.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from raynas.errors import RaynasError, RecipeError
from raynas.registry import Registry
from raynas.typed import from_dict

DATASETS: Registry["ImageDataset"] = Registry("dataset", group="raynas.datasets")
TRAIN, VAL, TEST = "train", "val", "test"
SPLITS = (TRAIN, VAL, TEST)


class DatasetMissingError(RaynasError, FileNotFoundError):
    """The dataset's files are not where the config says; the message says how to get them."""


class DatasetPathError(RecipeError, DatasetMissingError):
    """A dataset config's path holds no dataset: found when the config is read, naming the field."""


class NormalizedImages(Dataset):
    """``(images * scale - mean[c]) / std[c]`` per item, from compact image storage."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, scale: float,
                 mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels, self.scale = images, labels.long(), scale
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return (self.images[i].float() * self.scale - self.mean) / self.std, self.labels[i]

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole split as normalised float tensors (fine for small datasets)."""
        return (self.images.float() * self.scale - self.mean) / self.std, self.labels


class Indexed(Dataset):
    """``(*dataset[i], i)``: a dataset's items with their index (for per-sample statistics)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[Any, ...]:
        return (*self.dataset[i], i)


@dataclasses.dataclass(frozen=True)
class Splits:
    """Train/val/test splits of one dataset and its shape metadata."""

    train: NormalizedImages
    val: NormalizedImages
    test: NormalizedImages
    in_channels: int
    resolution: int
    num_classes: int

    def split(self, name: str) -> NormalizedImages:
        if name not in SPLITS:
            raise KeyError(f"unknown split {name!r}; known: {', '.join(SPLITS)}")
        return getattr(self, name)

    def loader(self, split: str, batch_size: int, shuffle: bool = False, seed: int = 0,
               epoch: int = 0, drop_last: bool = False, weights: Sequence[float] | None = None,
               with_indices: bool = False) -> DataLoader:
        """A single-process ``DataLoader``; with ``shuffle`` the order depends only on (seed, epoch).
        With ``weights`` (one per sample) it draws ``len(split)`` samples with replacement, sample ``i``
        with probability ``weights[i] / sum(weights)``, seeded by (seed, epoch) (``shuffle`` is then
        moot); with ``with_indices`` batches are ``(x, y, indices)``."""
        data = self.split(split)
        dataset: Dataset = Indexed(data) if with_indices else data
        gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch) if shuffle or weights is not None else None
        if weights is None:
            return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=gen, drop_last=drop_last)
        w = torch.as_tensor(weights, dtype=torch.float64)
        if w.shape != (len(data),):
            raise ValueError(f"{w.numel()} sampling weights for the {len(data)} samples of split {split!r}")
        sampler = WeightedRandomSampler(w, num_samples=len(data), replacement=True, generator=gen)
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last)


class ImageDataset:
    """A registered dataset: a typed ``Config`` and ``load() -> Splits``."""

    @dataclasses.dataclass
    class Config:
        seed: int = 0

    def __init__(self, config: Any = None) -> None:
        self.config = config if config is not None else self.Config()

    def load(self) -> Splits:
        raise NotImplementedError


def load_dataset(name: str, config: Any = None) -> Splits:
    """Load dataset ``name``; a mapping ``config`` is type-checked against its ``Config``."""
    cls = DATASETS.get(name)
    if isinstance(config, Mapping):
        config = from_dict(cls.Config, dict(config), "dataset_config")
    return cls(config).load()
