"""``chain``: a network as a chain of ``length`` layers, each one op of ``OPS`` (pure Python, no torch).

An arch is a tuple of op indices, written ``conv3x3-skip-maxpool-…``. ``skip`` is the identity, so archs
that differ only in where their skips are compute the same function: ``canonical`` drops them.
FLOPs (M) and params (M) are closed-form toy counts, so raynas's ``cost`` evaluator works on this space.
"""
from __future__ import annotations

import dataclasses
import itertools
from typing import Iterator

import numpy as np

from raynas.space.base import SPACES, SearchSpace
from raynas.typed import bounded

OPS = ("skip", "conv3x3", "conv5x5", "maxpool")
SKIP = OPS.index("skip")
KERNELS = {"skip": 0, "conv3x3": 3, "conv5x5": 5, "maxpool": 3}
CONVS = frozenset({"conv3x3", "conv5x5"})  # the ops with weights
SEP = "-"
IDENTITY = "identity"  # the canonical key of an all-skip chain
MEGA = 1e6

ChainArch = tuple[int, ...]


@SPACES.register("chain")
class ChainSpace(SearchSpace):
    """``length`` layers of ``channels`` channels on ``resolution``² feature maps, each one op of ``OPS``."""

    name = "chain"

    @dataclasses.dataclass
    class Config:
        length: int = bounded(6, gt=0, le=16)
        channels: int = bounded(16, gt=0)
        resolution: int = bounded(32, gt=0)

    # --- sampling and variation --------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> ChainArch:
        return tuple(int(op) for op in rng.integers(len(OPS), size=self.config.length))

    def mutate(self, arch: ChainArch, rng: np.random.Generator) -> ChainArch:
        """One layer gets a different op."""
        layer = int(rng.integers(len(arch)))
        op = (arch[layer] + int(rng.integers(1, len(OPS)))) % len(OPS)
        return arch[:layer] + (op,) + arch[layer + 1:]

    def crossover(self, a: ChainArch, b: ChainArch, rng: np.random.Generator) -> ChainArch:
        """Each layer from one parent or the other (uniform crossover)."""
        take_a = rng.random(len(a)) < 0.5
        return tuple(x if keep else y for x, y, keep in zip(a, b, take_a))

    def describe_mutation(self, parent: ChainArch, child: ChainArch) -> str:
        changed = [f"layer {i}: {OPS[p]} -> {OPS[c]}" for i, (p, c) in enumerate(zip(parent, child)) if p != c]
        return ", ".join(changed) or "unchanged"

    # --- identity ----------------------------------------------------------------------------
    def encode(self, arch: ChainArch) -> np.ndarray:
        """One-hot op per layer (``length × len(OPS)`` floats)."""
        out = np.zeros((len(arch), len(OPS)))
        out[np.arange(len(arch)), arch] = 1.0
        return out.ravel()

    @property
    def encoding_size(self) -> int:
        return self.config.length * len(OPS)

    def to_str(self, arch: ChainArch) -> str:
        return SEP.join(OPS[op] for op in arch)

    def from_str(self, s: str) -> ChainArch:
        names = s.split(SEP)
        if len(names) != self.config.length:
            raise ValueError(f"{s!r}: expected {self.config.length} {SEP!r}-separated ops, got {len(names)}")
        unknown = [n for n in names if n not in OPS]
        if unknown:
            raise ValueError(f"{s!r}: unknown op {unknown[0]!r}; ops: {', '.join(OPS)}")
        return tuple(OPS.index(n) for n in names)

    def contains(self, arch: object) -> bool:
        return (isinstance(arch, tuple) and len(arch) == self.config.length
                and all(isinstance(op, int) and 0 <= op < len(OPS) for op in arch))

    def canonical(self, arch: ChainArch) -> str:
        """The chain without its identity layers."""
        return SEP.join(OPS[op] for op in arch if op != SKIP) or IDENTITY

    def size(self) -> int:
        return len(OPS) ** self.config.length

    def enumerate(self) -> Iterator[ChainArch]:
        return iter(itertools.product(range(len(OPS)), repeat=self.config.length))

    # --- costs (what raynas's ``cost`` evaluator reads) ----------------------------------------
    def params(self, arch: ChainArch) -> float:
        """Weights (M): a k×k convolution has ``k²·C²``; skip and pooling have none."""
        c = self.config.channels
        return sum(KERNELS[OPS[op]] ** 2 * c * c for op in arch if OPS[op] in CONVS) / MEGA

    def flops(self, arch: ChainArch) -> float:
        """Multiply-adds (M): ``k²·C²·R²`` per convolution, ``k²·C·R²`` per pooling, none for skip."""
        c, r2 = self.config.channels, self.config.resolution ** 2
        total = 0
        for op in arch:
            k2 = KERNELS[OPS[op]] ** 2
            total += k2 * c * c * r2 if OPS[op] in CONVS else k2 * c * r2
        return total / MEGA
