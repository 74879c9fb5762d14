"""Datasets (torch): a registry and the built-ins ``digits`` (scikit-learn, 8x8) and ``cifar10``."""
from raynas.data import cifar10, digits  # noqa: F401  (register "cifar10", "digits")
from raynas.data.base import DATASETS, DatasetMissingError, NormalizedImages, Splits, load_dataset

__all__ = ["DATASETS", "DatasetMissingError", "NormalizedImages", "Splits", "load_dataset"]
