"""Datasets: digits splits and normalisation; CIFAR-10 from real-format pickled batches in tmp_path."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from raynas.data import DATASETS, DatasetMissingError, load_dataset
from raynas.data.cifar10 import MEAN, STD, SUBDIR, TEST_FILE, TRAIN_FILES
from raynas.errors import RecipeError

DIGITS_TOTAL = 1797
PER_BATCH, TEST_N = 20, 10


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_registry_lists_builtins():
    assert {"digits", "cifar10"} <= set(DATASETS.names())


def test_digits_splits_are_fixed_stratified_and_disjoint(digits):
    sizes = [len(digits.train), len(digits.val), len(digits.test)]
    assert sum(sizes) == DIGITS_TOTAL and sizes[1] == sizes[2] == 270
    assert (digits.in_channels, digits.resolution, digits.num_classes) == (1, 8, 10)
    assert np.bincount(digits.val.labels.numpy(), minlength=10).min() >= 25
    rows = lambda split: {bytes(x.numpy()) + bytes([int(y)]) for x, y in zip(split.images, split.labels)}  # noqa
    assert not rows(digits.val) & rows(digits.test)
    again = load_dataset("digits")
    assert torch.equal(again.train.images, digits.train.images)
    other = load_dataset("digits", {"seed": 1})
    assert not torch.equal(other.train.images, digits.train.images)


def test_digits_are_normalised_float_tensors(digits):
    x, y = digits.train.tensors()
    assert x.shape == (len(digits.train), 1, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert abs(float(x.mean())) < 1e-4 and abs(float(x.std()) - 1) < 1e-2
    item_x, item_y = digits.train[5]
    assert torch.allclose(item_x, x[5]) and item_y == y[5]


def test_loader_shuffle_depends_only_on_seed_and_epoch(digits):
    first = lambda **kw: next(iter(digits.loader("train", 16, shuffle=True, **kw)))[1]  # noqa: E731
    assert torch.equal(first(seed=0, epoch=1), first(seed=0, epoch=1))
    assert not torch.equal(first(seed=0, epoch=1), first(seed=0, epoch=2))
    x, y = next(iter(digits.loader("val", 32)))
    assert x.shape == (32, 1, 8, 8) and torch.equal(y, digits.val.labels[:32])
    with pytest.raises(KeyError, match="unknown split"):
        digits.loader("holdout", 8)


def test_dataset_config_is_type_checked():
    with pytest.raises(RecipeError, match="dataset_config.sed: unknown field"):
        load_dataset("digits", {"sed": 1})
    with pytest.raises(KeyError, match="unknown dataset 'mnist'"):
        load_dataset("mnist")


def write_batch(path, n, rng, label_offset=0):
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = [(i + label_offset) % 10 for i in range(n)]
    with open(path, "wb") as f:
        pickle.dump({b"batch_label": b"fake", b"labels": labels, b"data": data,
                     b"filenames": [b"x.png"] * n}, f)
    return data, labels


@pytest.fixture
def cifar_dir(tmp_path):
    folder = tmp_path / SUBDIR
    folder.mkdir()
    rng = np.random.default_rng(0)
    batches = [write_batch(folder / name, PER_BATCH, rng, i) for i, name in enumerate(TRAIN_FILES)]
    test = write_batch(folder / TEST_FILE, TEST_N, rng)
    return folder, batches, test


def test_cifar10_reads_python_batches(cifar_dir):
    folder, _, (test_data, test_labels) = cifar_dir
    splits = load_dataset("cifar10", {"path": str(folder), "val_size": 15})
    assert (len(splits.train), len(splits.val), len(splits.test)) == (5 * PER_BATCH - 15, 15, TEST_N)
    assert (splits.in_channels, splits.resolution, splits.num_classes) == (3, 32, 10)
    x, y = splits.test[3]
    raw = test_data[3].reshape(3, 32, 32).astype(np.float32) / 255.0  # channel-major rows
    want = (raw - np.array(MEAN, dtype=np.float32)[:, None, None]) / np.array(STD, dtype=np.float32)[:, None, None]
    assert x.shape == (3, 32, 32) and np.allclose(x.numpy(), want, atol=1e-6) and int(y) == test_labels[3]
    parent = load_dataset("cifar10", {"path": str(folder.parent), "val_size": 15, "limit_train": 7})
    assert len(parent.train) == 7 and torch.equal(parent.val.images, splits.val.images)


def test_cifar10_missing_files_error_says_what_to_do(tmp_path, cifar_dir):
    with pytest.raises(DatasetMissingError, match="data_batch_1.*test_batch.*cifar-10-python.tar.gz"):
        load_dataset("cifar10", {"path": str(tmp_path / "nowhere")})
    folder, _, _ = cifar_dir
    (folder / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="missing data_batch_3"):
        load_dataset("cifar10", {"path": str(folder)})


def test_cifar10_rejects_files_of_another_format(cifar_dir):
    folder, _, _ = cifar_dir
    with open(folder / "data_batch_2", "wb") as f:
        pickle.dump({b"data": np.zeros((4, 100), dtype=np.uint8), b"labels": [0] * 4}, f)
    with pytest.raises(ValueError, match="data_batch_2 has data"):
        load_dataset("cifar10", {"path": str(folder)})
