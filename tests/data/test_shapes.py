"""The procedural ``shapes`` dataset: seeded and deterministic, every shape drawable everywhere, the
classes balanced, normalised like every dataset, and a real NB201 network learns it."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from raynas.data import load_dataset
from raynas.data.shapes import MAX_SIZE, MIN_SIZE, RESOLUTION, SHAPES, draw, generate

SMALL = {"train_size": 600, "val_size": 100, "test_size": 200}


@pytest.fixture(scope="module")
def shapes():
    return load_dataset("shapes", SMALL)


def test_same_seed_same_images_other_seed_other_images(shapes):
    again = load_dataset("shapes", SMALL)
    assert all(torch.equal(getattr(again, s).images, getattr(shapes, s).images) for s in ("train", "val", "test"))
    other = load_dataset("shapes", {**SMALL, "seed": 1})
    assert not torch.equal(other.train.images, shapes.train.images)
    assert not torch.equal(shapes.val.images[:50], shapes.test.images[:50])  # splits are separate draws
    bigger = load_dataset("shapes", {**SMALL, "test_size": 400})  # a split's draw ignores the others' sizes
    assert torch.equal(bigger.test.images[:200], shapes.test.images) and torch.equal(bigger.train.images,
                                                                                      shapes.train.images)


def test_shape_metadata_balance_and_normalisation(shapes):
    assert (shapes.in_channels, shapes.resolution, shapes.num_classes) == (1, RESOLUTION, len(SHAPES)) == (1, 16, 10)
    x, y = shapes.train.tensors()
    assert x.shape == (600, 1, 16, 16) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert abs(float(x.mean())) < 1e-3 and abs(float(x.std()) - 1) < 1e-2
    assert np.bincount(y.numpy(), minlength=10).min() >= 40  # ~60 per class


@pytest.mark.parametrize("shape", range(len(SHAPES)), ids=SHAPES)
def test_every_shape_fits_at_every_size_and_position(shape):
    for size in range(MIN_SIZE, MAX_SIZE + 1):
        for r in (0, RESOLUTION - size):
            for c in (0, RESOLUTION - size):
                img = np.zeros((RESOLUTION, RESOLUTION), np.float32)
                draw(shape, img, r, c, size, 1.0)
                on = np.argwhere(img > 0)
                assert len(on) >= size and on.min() >= 0 and (on.max(0) < RESOLUTION).all()
                assert on[:, 0].min() >= r and on[:, 0].max() < r + size and on[:, 1].max() < c + size


def test_clean_shapes_differ_but_no_pixel_tells_the_class():
    """Without noise every class has its own mean image, yet no pixel's mean separates one class
    from all others: the class is in the spatial pattern, not in where ink is."""
    x, y = generate(4000, (0,), noise=0.0, salt=0.0)
    means = np.stack([x[y == k].mean(0).ravel() for k in range(len(SHAPES))])
    assert len({m.tobytes() for m in means}) == len(SHAPES)
    assert np.ptp(means, axis=0).max() < 0.6  # a pixel is inked with similar frequency in every class


def test_an_nb201_network_learns_it():
    from raynas.space.nb201 import NB201Space
    from raynas.supernet.nb201 import NB201Supernet

    torch.manual_seed(0)
    data = load_dataset("shapes", {"train_size": 4000, "val_size": 100, "test_size": 500})
    space = NB201Space()
    arch = space.from_str("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|avg_pool_3x3~1|"
                          "nor_conv_3x3~2|")
    net = NB201Supernet(space, NB201Supernet.Config(num_classes=10))
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    for epoch in range(3):
        for xb, yb in data.loader("train", 64, shuffle=True, epoch=epoch):
            loss = torch.nn.functional.cross_entropy(net(xb, arch=arch), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    x, y = data.test.tensors()
    with torch.no_grad():
        acc = float((net(x, arch=arch).argmax(1) == y).float().mean())
    assert acc > 0.3  # chance is 0.1


def test_the_stored_ground_truth_table_matches_the_testbed():
    """``benchmarks/data/shapes-nb201-standalone.json`` (``benchmarks/ranking_testbed.py --write``) is
    what ranking benchmarks compare with: ≥ 30 distinct connected archs, ≥ 3 seeds each, settings that
    rebuild the same dataset, a noise ceiling ≥ 0.8, recorded in docs/BENCHMARKS.md."""
    import json
    from pathlib import Path

    from benchmarks.ranking_testbed import TABLE, noise_ceiling
    from raynas.space.nb201 import ZERO_TERM, NB201Space, functional_form

    table = json.loads(Path(TABLE).read_text())
    space = NB201Space()
    archs = [space.from_str(a) for a in table["archs"]]
    assert len(archs) >= 30 and len({space.canonical(a) for a in archs}) == len(archs)
    assert all(functional_form(a) != ZERO_TERM for a in archs)
    val, test = np.array(table["acc"]["val"]), np.array(table["acc"]["test"])
    assert val.shape == test.shape == (len(table["seeds"]), len(archs)) and len(table["seeds"]) >= 3
    assert ((10 < val) & (val <= 100)).all() and table["dataset"] == "shapes"
    load_dataset("shapes", {**table["dataset_config"], "train_size": 10, "val_size": 10, "test_size": 10})
    doc = (Path(TABLE).parents[2] / "docs" / "BENCHMARKS.md").read_text()
    assert f"**{noise_ceiling(val):.2f}**" in doc and f"**{noise_ceiling(test):.2f}**" in doc
    assert min(noise_ceiling(val), noise_ceiling(test)) >= 0.8  # the testbed's aim: ranking means something
