"""``shapes``: a procedurally generated image task whose difficulty comes from spatial structure — a
ranking testbed for supernets (on digits, saturated near 98 %, subnets differ by little more than
seed noise).

Each 16x16 grey image holds one stroke shape of ``SHAPES`` (horizontal, vertical and both diagonal
bars, plus, x, hollow square, L corner, T, filled square), 5–8 pixels across at a random position,
at a random contrast (0.6–1), under Gaussian pixel noise (``noise``), salt pixels of shape-like
brightness (``salt``, a share of pixels) and optionally short distractor strokes (``clutter``). No
single pixel tells the class: a bar from a diagonal needs a 3x3 neighbourhood, a plus from an x or a
T oriented context, a hollow from a filled square a receptive field as wide as the shape, and the
noise rewards averaging. So the ops of an NB201 cell really differ here — 3x3 convolutions see
strokes, 1x1 convolutions and skips do not, average pooling denoises. How much the archs' stand-alone
accuracies spread, how little seeds move them, and the resulting noise ceiling are measured by
``benchmarks/ranking_testbed.py`` (docs/BENCHMARKS.md), whose table the ranking benchmarks reuse. At
the defaults (noise 0.2, no salt, 3 distractor strokes) with the NB201 cell supernet's ``pool``
reductions, 30 archs trained stand-alone for 10 epochs span 31–97 % test accuracy with a mean seed std
of 0.56 points: the noise ceiling (Kendall τ of one seed against the mean of the others) is 0.87.

Deterministic: image ``i`` of split ``k`` of seed ``s`` is drawn from
``numpy.random.default_rng([s, k, i])`` alone, so sizes are free (samples are unlimited) and a larger
split extends a smaller one; val and test are large by default (5,000 and 20,000) so that accuracy is
measured to about ±0.5 and ±0.25 points. Pixels are stored as uint8 over [-1, 2] and standardised
with the train split's mean and std, like every ``raynas.data`` dataset.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import torch

from raynas.data.base import DATASETS, ImageDataset, NormalizedImages, Splits
from raynas.typed import bounded

RESOLUTION = 16
SHAPES = ("hbar", "vbar", "diag", "antidiag", "plus", "x", "square", "corner", "tee", "block")
MIN_SIZE, MAX_SIZE = 5, 8  # shape extent in pixels (inclusive)
LOW, HIGH = -1.0, 2.0  # the stored pixel range
LEVELS = 255 / (HIGH - LOW)
MAX_SPLIT = 1_000_000


def _bar(img: np.ndarray, r: int, c: int, dr: int, dc: int, n: int, v: float) -> None:
    for k in range(n):
        img[r + k * dr, c + k * dc] = v


def draw(shape: int, img: np.ndarray, r: int, c: int, n: int, v: float) -> None:
    """Draw ``SHAPES[shape]`` of extent ``n`` with its top-left corner at ``(r, c)`` into ``img``."""
    h, e = n // 2, n - 1
    strokes = {
        "hbar": [(r + h, c, 0, 1)], "vbar": [(r, c + h, 1, 0)],
        "diag": [(r, c, 1, 1)], "antidiag": [(r, c + e, 1, -1)],
        "plus": [(r + h, c, 0, 1), (r, c + h, 1, 0)], "x": [(r, c, 1, 1), (r, c + e, 1, -1)],
        "square": [(r, c, 0, 1), (r + e, c, 0, 1), (r, c, 1, 0), (r, c + e, 1, 0)],
        "corner": [(r + e, c, 0, 1), (r, c, 1, 0)], "tee": [(r, c, 0, 1), (r, c + h, 1, 0)],
    }
    if SHAPES[shape] == "block":
        img[r:r + n, c:c + n] = v
        return
    for r0, c0, dr, dc in strokes[SHAPES[shape]]:
        _bar(img, r0, c0, dr, dc, n, v)


DIRECTIONS = ((0, 1), (1, 0), (1, 1), (1, -1))
CLUTTER_LENGTHS = (2, 3)


def _clutter(img: np.ndarray, rng: np.random.Generator, count: int) -> None:
    """``count`` short strokes (2–3 pixels, any of 4 directions) at random places: structured noise."""
    for _ in range(count):
        dr, dc = DIRECTIONS[int(rng.integers(len(DIRECTIONS)))]
        n = int(rng.choice(CLUTTER_LENGTHS))
        r = int(rng.integers(0, RESOLUTION - n + 1))
        c = int(rng.integers(n - 1 if dc < 0 else 0, RESOLUTION - (n - 1 if dc > 0 else 0)))
        _bar(img, r, c, dr, dc, n, float(rng.uniform(0.6, 1.0)))


def generate(n: int, seed: Sequence[int], noise: float, salt: float,
             clutter: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images ``(n, 1, 16, 16)`` float32 and their labels; image ``i`` is drawn from
    ``numpy.random.default_rng([*seed, i])`` alone, so a larger ``n`` extends a smaller one."""
    labels = np.empty(n, np.int64)
    images = np.zeros((n, RESOLUTION, RESOLUTION), np.float32)
    for i in range(n):
        rng = np.random.default_rng([*seed, i])
        labels[i] = rng.integers(len(SHAPES))
        size = int(rng.integers(MIN_SIZE, MAX_SIZE + 1))
        r, c = (int(v) for v in rng.integers(0, RESOLUTION - size + 1, 2))
        _clutter(images[i], rng, clutter)
        draw(int(labels[i]), images[i], r, c, size, float(rng.uniform(0.6, 1.0)))
        images[i] += rng.normal(0.0, noise, images[i].shape).astype(np.float32)
        spots = rng.random(images[i].shape) < salt
        images[i][spots] = rng.uniform(0.5, 1.0, int(spots.sum())).astype(np.float32)
    return images[:, None], labels


@DATASETS.register("shapes")
class Shapes(ImageDataset):
    """Seeded procedural stroke shapes (see the module docstring): 10 classes, 1x16x16."""

    @dataclasses.dataclass
    class Config:
        seed: int = bounded(0, ge=0)
        train_size: int = bounded(8000, gt=0, le=MAX_SPLIT)
        val_size: int = bounded(5000, gt=0, le=MAX_SPLIT)
        test_size: int = bounded(20000, gt=0, le=MAX_SPLIT)
        noise: float = bounded(0.2, ge=0.0, le=2.0)  # std of the Gaussian pixel noise
        salt: float = bounded(0.0, ge=0.0, lt=1.0)  # share of pixels replaced by bright spots
        clutter: int = bounded(3, ge=0, le=16)  # short distractor strokes per image

    def load(self) -> Splits:
        cfg = self.config
        sizes = (cfg.train_size, cfg.val_size, cfg.test_size)
        drawn = [generate(n, (cfg.seed, k), cfg.noise, cfg.salt, cfg.clutter) for k, n in enumerate(sizes)]
        stored = [(np.round((np.clip(x, LOW, HIGH) - LOW) * LEVELS).astype(np.uint8), y) for x, y in drawn]
        train_pixels = stored[0][0].astype(np.float64) / LEVELS
        mean, std = (float(train_pixels.mean()),), (float(train_pixels.std()),)

        def part(x: np.ndarray, y: np.ndarray) -> NormalizedImages:
            return NormalizedImages(torch.from_numpy(x), torch.from_numpy(y), 1.0 / LEVELS, mean, std)

        train, val, test = (part(x, y) for x, y in stored)
        return Splits(train, val, test, in_channels=1, resolution=RESOLUTION, num_classes=len(SHAPES))
