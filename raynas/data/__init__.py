"""Datasets (torch): a registry and the built-ins ``digits`` (scikit-learn, 8x8), ``cifar10`` and
``shapes`` (procedural 16x16 stroke shapes: the ranking testbed)."""
from raynas.data import cifar10, digits, shapes  # noqa: F401  (register "cifar10", "digits", "shapes")
from raynas.data.base import DATASETS, DatasetMissingError, NormalizedImages, Splits, load_dataset

__all__ = ["DATASETS", "DatasetMissingError", "NormalizedImages", "Splits", "load_dataset"]
