"""Shared pieces for serving tests: a tiny mbv3 space (trains on digits in seconds) and arch helpers."""
from __future__ import annotations

import numpy as np

from raynas.serving.spec import ModelSpec

# Two stages, depth 1-2, kernel 3/5, expand 2/3: ~4k-parameter subnets.
TINY_MBV3 = dict(depths=[1, 2], kernel_sizes=[3, 5], expand_ratios=[2, 3], stage_widths=[8, 16],
                 stage_strides=[1, 2], stem_width=8, head_width=16)
TRAIN = {"epochs": 1, "batch_size": 128, "calib_batches": 4, "num_threads": 1}


def tiny_spec() -> ModelSpec:
    return ModelSpec.for_training(train_seed=0, train_batch_size=TRAIN["batch_size"],
                                  calib_batches=TRAIN["calib_batches"], space_config=TINY_MBV3)


class FreshArchs:
    """Seeded archs whose functions (``canonical``) were not drawn before, so cache hits are deliberate."""

    def __init__(self, space, seed: int = 0) -> None:
        self.space, self.rng, self.seen = space, np.random.default_rng(seed), set()

    def take(self, n: int) -> list:
        out = []
        while len(out) < n:
            arch = self.space.sample(self.rng)
            key = self.space.canonical(arch)
            if key not in self.seen:
                self.seen.add(key)
                out.append(arch)
        return out


def twin(space, arch):
    """An arch with another string but the same function: stage 0 at depth 1, its unused slot changed."""
    base = arch._replace(depths=(1,) + arch.depths[1:])
    kernels = list(base.kernels)
    kernels[1] = space.kernel_choices[0] if kernels[1] != space.kernel_choices[0] else space.kernel_choices[-1]
    other = base._replace(kernels=tuple(kernels))
    assert space.to_str(other) != space.to_str(base) and space.canonical(other) == space.canonical(base)
    return base, other


def items(space, archs) -> list[tuple[str, str]]:
    return [(space.to_str(a), space.canonical(a)) for a in archs]


def perturbed(arrays: dict) -> dict:
    """Other weights (every float parameter scaled), hence another version."""
    return {k: (v * np.float32(0.9) if v.dtype.kind == "f" and "running" not in k else v) for k, v in arrays.items()}
