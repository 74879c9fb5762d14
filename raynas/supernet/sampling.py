"""Sampling rules: which subnets one supernet-training step trains, registered by name in ``SAMPLERS``.

Contract: a rule is built as ``cls(space, config)``, owns a ``np.random.Generator`` seeded from
``config.seed`` (same seed → same sequence), and ``next_step()`` returns a ``Step``: the archs whose
gradients are accumulated into one optimizer step, and whether ``archs[0]`` is the teacher of the
others (in-place distillation, BigNAS). ``state()``/``load_state()`` capture the RNG for resuming.

Rules:
  * ``uniform``    — single-path one-shot (SPOS): ``num_archs`` uniformly sampled archs per step;
  * ``sandwich``   — largest + smallest + ``num_random`` uniform archs (BigNAS / slimmable nets),
                     the largest distilling into the others when ``inplace_distill``;
  * ``complexity`` — complexity-aware: a FLOPs bin drawn uniformly, then an arch from that bin
                     (equal-width bins over the FLOPs range of a seeded pool of archs), so small and
                     large subnets are trained as often as mid-sized ones (ShiftNAS, ElasticViT).
"""
from __future__ import annotations

import abc
import dataclasses
from typing import Any, Mapping, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from raynas.registry import Registry
from raynas.space.base import Arch, SearchSpace
from raynas.typed import bounded, from_dict

SAMPLERS: Registry["SamplingRule"] = Registry("sampling rule")
UNIFORM, SANDWICH, COMPLEXITY = "uniform", "sandwich", "complexity"
POOL_STREAM = 1  # child-seed index of the complexity rule's pool RNG


class Step(NamedTuple):
    """Archs of one training step; with ``distill`` the first arch teaches the others."""

    archs: tuple[Arch, ...]
    distill: bool = False


class SamplingRule(abc.ABC):
    """Base rule: seeded RNG, ``next_step`` (public) wrapping ``_next_step`` (hook)."""

    @dataclasses.dataclass
    class Config:
        seed: int = bounded(0, ge=0)

    def __init__(self, space: SearchSpace, config: Any = None) -> None:
        self.space = space
        self.config = config if config is not None else self.Config()
        self.rng = np.random.default_rng(self.config.seed)

    def next_step(self) -> Step:
        step = self._next_step()
        for arch in step.archs:
            if not self.space.contains(arch):
                raise RuntimeError(f"{type(self).__name__} produced {arch!r}, not an arch of {self.space.name}")
        return step

    @abc.abstractmethod
    def _next_step(self) -> Step: ...

    def state(self) -> dict[str, Any]:
        """JSON-serialisable state (the RNG's), for checkpoints."""
        return {"rng": self.rng.bit_generator.state}

    def load_state(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]


def _require(space: SearchSpace, *methods: str) -> None:
    missing = [m for m in methods if not callable(getattr(space, m, None))]
    if missing:
        raise ValueError(f"space {space.name!r} has no {', '.join(missing)}(); this sampling rule needs it")


@SAMPLERS.register(UNIFORM)
class UniformRule(SamplingRule):
    """Single-path uniform sampling (SPOS): ``num_archs`` independent uniform archs per step."""

    @dataclasses.dataclass
    class Config:
        seed: int = bounded(0, ge=0)
        num_archs: int = bounded(1, ge=1)

    def _next_step(self) -> Step:
        return Step(tuple(self.space.sample(self.rng) for _ in range(self.config.num_archs)))


@SAMPLERS.register(SANDWICH)
class SandwichRule(SamplingRule):
    """The sandwich rule: ``(largest, smallest, *num_random uniform)``; the space must define
    ``largest()`` and ``smallest()``. With ``inplace_distill`` the largest is the others' teacher."""

    @dataclasses.dataclass
    class Config:
        seed: int = bounded(0, ge=0)
        num_random: int = bounded(2, ge=0)
        inplace_distill: bool = True

    def __init__(self, space: SearchSpace, config: Any = None) -> None:
        super().__init__(space, config)
        _require(space, "largest", "smallest")

    def _next_step(self) -> Step:
        randoms = tuple(self.space.sample(self.rng) for _ in range(self.config.num_random))
        archs = (self.space.largest(), self.space.smallest()) + randoms
        return Step(archs, self.config.inplace_distill)


@SAMPLERS.register(COMPLEXITY)
class ComplexityAwareRule(SamplingRule):
    """Uniform over FLOPs bins (``space.flops``): draw a bin, then rejection-sample an arch in it
    (at most ``max_tries``; if none lands there, a random member of the seeded pool that defined it)."""

    @dataclasses.dataclass
    class Config:
        seed: int = bounded(0, ge=0)
        num_bins: int = bounded(8, ge=1)
        pool_size: int = bounded(1000, ge=1)
        max_tries: int = bounded(50, ge=1)
        num_archs: int = bounded(1, ge=1)

    def __init__(self, space: SearchSpace, config: Any = None) -> None:
        super().__init__(space, config)
        _require(space, "flops")
        pool_rng = np.random.default_rng([self.config.seed, POOL_STREAM])  # the pool is a function of config
        pool = [space.sample(pool_rng) for _ in range(self.config.pool_size)]
        flops = np.array([space.flops(a) for a in pool], dtype=np.float64)
        self.edges = np.linspace(flops.min(), flops.max(), self.config.num_bins + 1)
        members = self.bin_of(flops)
        self.pool = {b: [a for a, m in zip(pool, members) if m == b] for b in np.unique(members).tolist()}
        self.bins = sorted(self.pool)

    def bin_of(self, flops: np.ndarray | float) -> np.ndarray:
        """Bin index of each FLOPs value (values outside the pool's range go to the end bins)."""
        return np.clip(np.searchsorted(self.edges, flops, side="right") - 1, 0, self.config.num_bins - 1)

    def _draw(self) -> Arch:
        target = self.bins[int(self.rng.integers(len(self.bins)))]
        for _ in range(self.config.max_tries):
            arch = self.space.sample(self.rng)
            if int(self.bin_of(self.space.flops(arch))) == target:
                return arch
        members = self.pool[target]
        return members[int(self.rng.integers(len(members)))]

    def _next_step(self) -> Step:
        return Step(tuple(self._draw() for _ in range(self.config.num_archs)))


def build_sampler(name: str, space: SearchSpace, config: Any = None) -> SamplingRule:
    """Build the rule registered as ``name``; a mapping ``config`` is type-checked."""
    cls = SAMPLERS.get(name)
    if isinstance(config, Mapping):
        config = from_dict(cls.Config, dict(config), "sampling_config")
    return cls(space, config)


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """In-place distillation loss: ``T^2 * KL(softmax(teacher/T) || softmax(student/T))``, batch mean;
    the teacher is detached (no gradient flows into it through this loss)."""
    t = temperature
    target = F.softmax(teacher_logits.detach() / t, dim=1)
    return F.kl_div(F.log_softmax(student_logits / t, dim=1), target, reduction="batchmean") * t * t

