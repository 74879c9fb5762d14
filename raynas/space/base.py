"""The ``SearchSpace`` interface: pure Python (numpy only, never torch), deterministic given an RNG.

An *arch* is an immutable, hashable value owned by its space (NB201 uses a tuple of op indices).
Every space passes ``raynas.testing.space_contract``.
"""
from __future__ import annotations

import abc
import dataclasses
from typing import Any, Hashable, Iterator, NamedTuple

import numpy as np

from raynas.errors import RecipeError
from raynas.registry import Registry

Arch = Hashable
SPACES: Registry["SearchSpace"] = Registry("search space", group="raynas.spaces")


class Cost(NamedTuple):
    """Analytic cost of a subnet: multiply-accumulates (``flops``) and parameter count."""

    flops: int
    params: int


def increasing_choices(values: list[int], path: str, name: str, minimum: int = 1) -> None:
    """``RecipeError`` naming ``<path>.<name>`` unless ``values`` is a non-empty strictly increasing list
    of ints ``>= minimum`` (a space's choice list: depths, kernel sizes, widths …)."""
    if not values or sorted(set(values)) != list(values) or values[0] < minimum:
        raise RecipeError(f"{path}.{name}" if path else name,
                          f"must be a non-empty increasing list of ints >= {minimum}, got {values!r}")


class SearchSpace(abc.ABC):
    """A set of architectures with sampling, variation operators, encodings and stable string ids.

    Contract:
      * ``sample``/``mutate``/``crossover`` draw randomness only from the ``rng`` passed in.
      * ``mutate(a)`` returns an arch different from ``a``; results of all operators are ``contains``-valid.
      * ``from_str(to_str(a)) == a`` and ``to_str`` is stable across processes and versions.
      * ``canonical(a) == canonical(b)`` iff ``a`` and ``b`` compute the same function (a functional hash).
      * ``encode(a)`` is a fixed-length float vector (length ``encoding_size``) for predictors.
    """

    name: str = "space"

    @dataclasses.dataclass
    class Config:
        """Options of the space (none for fixed spaces such as NB201)."""

    def __init__(self, config: Any = None) -> None:
        self.config = config if config is not None else self.Config()

    @abc.abstractmethod
    def sample(self, rng: np.random.Generator) -> Arch: ...

    @abc.abstractmethod
    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch: ...

    @abc.abstractmethod
    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> Arch: ...

    @abc.abstractmethod
    def encode(self, arch: Arch) -> np.ndarray: ...

    @property
    @abc.abstractmethod
    def encoding_size(self) -> int: ...

    @abc.abstractmethod
    def to_str(self, arch: Arch) -> str: ...

    @abc.abstractmethod
    def from_str(self, s: str) -> Arch:
        """Parse ``s``; raise ``ValueError`` naming what is wrong when it is not an arch of this space."""

    @abc.abstractmethod
    def contains(self, arch: Arch) -> bool: ...

    def canonical(self, arch: Arch) -> str:
        """Functional hash; the default treats every arch as distinct (its string id)."""
        return self.to_str(arch)

    def size(self) -> int | None:
        """Number of archs, or ``None`` when too large to matter."""
        return None

    def enumerate(self) -> Iterator[Arch]:
        raise NotImplementedError(f"{self.name} is too large to enumerate")

    def neighbours(self, arch: Arch) -> list[Arch]:
        """Every arch one elementary change away from ``arch`` (each one a possible ``mutate`` result),
        in a fixed order; local search walks them. Spaces without a finite neighbourhood need not
        implement it."""
        raise NotImplementedError(f"{self.name} has no neighbourhood (neighbours) for local search")

    def describe_mutation(self, parent: Arch, child: Arch) -> str:
        """A short human-readable description of what changed from ``parent`` to ``child``."""
        return f"{self.to_str(parent)} -> {self.to_str(child)}"


def distinct_samples(space: SearchSpace, n: int, rng: np.random.Generator) -> list[Arch]:
    """``n`` uniform samples of ``space`` computing ``n`` different functions (``canonical`` keys), in
    draw order; ``space`` must hold at least ``n`` functions."""
    archs: list[Arch] = []
    keys: set[str] = set()
    while len(archs) < n:
        arch = space.sample(rng)
        if space.canonical(arch) not in keys:
            keys.add(space.canonical(arch))
            archs.append(arch)
    return archs


def build_space(name: str, config: Any = None) -> SearchSpace:
    return SPACES.get(name)(config)
