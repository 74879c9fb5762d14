"""Sampling rules: which subnets one supernet-training step trains, registered by name in ``SAMPLERS``.

Contract: a rule is built as ``cls(space, config)``, owns a ``np.random.Generator`` seeded from
``config.seed`` (same seed → same sequence), and ``next_step()`` returns a ``Step``: the archs whose
gradients are accumulated into one optimizer step, and whether ``archs[0]`` is the teacher of the
others (in-place distillation, BigNAS). ``state()``/``load_state()`` capture the RNG (and whatever
statistics the rule learns) for resuming.

Training hooks (``raynas.supernet.train`` calls them; the defaults do nothing, so a rule that ignores
training is a pure arch stream):
  * ``bind(model)`` — once, before the first epoch: a rule that needs something of the model checks
    it here (``ValueError`` when the model cannot serve it);
  * ``epoch_weights(num_samples)`` — before each epoch: the sampling probabilities of the train
    samples (sum 1), or ``None`` for the plain seeded shuffle; with probabilities the loader draws
    ``num_samples`` samples with replacement and each sample's loss is weighted by ``1/(N p_i)``;
  * ``observe_step(model, step)`` — after the backward passes of ``step``, before gradient clipping and
    the optimizer step (the gradients of all the step's archs are accumulated in ``.grad``);
  * ``observe_samples(indices, grad_norms)`` — per step, only when the class sets ``observes_samples``
    (the loader then yields sample indices): each sample's ``||softmax(z) - onehot(y)||``, the norm of
    the loss's gradient w.r.t. the logits, averaged over the step's archs;
  * ``end_epoch()`` — after each epoch: turn the statistics into the next epoch's distributions.

Rules:
  * ``uniform``    — single-path one-shot (SPOS): ``num_archs`` uniformly sampled archs per step;
  * ``sandwich``   — largest + smallest + ``num_random`` uniform archs (BigNAS / slimmable nets),
                     the largest distilling into the others when ``inplace_distill``;
  * ``complexity`` — complexity-aware: a FLOPs bin drawn uniformly, then an arch from that bin
                     (equal-width bins over the FLOPs range of a seeded pool of archs), so small and
                     large subnets are trained as often as mid-sized ones (ShiftNAS, ElasticViT);
  * ``pada``       — PA&DA (Lu et al., CVPR 2023): importance sampling of paths (per edge, ops drawn
                     in proportion to their mean gradient norm of the previous epoch) and of data
                     (samples in proportion to their logit-gradient norm), each mixed with uniform;
                     edge-choice spaces (``space.edges``/``space.ops``) whose supernet names each
                     op's parameters (``op_parameter_names(edge, op)``), e.g. nb201.
"""
from __future__ import annotations

import abc
import dataclasses
from typing import Any, Mapping, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from raynas.registry import Registry
from raynas.space.base import Arch, SearchSpace
from raynas.typed import bounded, from_dict

SAMPLERS: Registry["SamplingRule"] = Registry("sampling rule")
UNIFORM, SANDWICH, COMPLEXITY, PADA = "uniform", "sandwich", "complexity", "pada"
POOL_STREAM = 1  # child-seed index of the complexity rule's pool RNG


class Step(NamedTuple):
    """Archs of one training step; with ``distill`` the first arch teaches the others."""

    archs: tuple[Arch, ...]
    distill: bool = False


class SamplingRule(abc.ABC):
    """Base rule: seeded RNG, ``next_step`` (public) wrapping ``_next_step`` (hook), no-op training hooks."""

    observes_samples: bool = False  # True: training reports per-sample gradient norms (``observe_samples``)

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

    def bind(self, model: nn.Module) -> None:
        """Before training ``model``: check that the rule can work with it (``ValueError`` if not)."""

    def epoch_weights(self, num_samples: int) -> np.ndarray | None:
        """Sampling probabilities of the ``num_samples`` train samples for the coming epoch, or None."""
        return None

    def observe_step(self, model: nn.Module, step: Step) -> None:
        """After the backward passes of ``step`` (before clipping and the optimizer step)."""

    def observe_samples(self, indices: np.ndarray, grad_norms: np.ndarray) -> None:
        """Logit-gradient norms of the samples ``indices`` of one step (when ``observes_samples``)."""

    def end_epoch(self) -> None:
        """After an epoch: turn what was observed into the next epoch's distributions."""


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


@SAMPLERS.register(PADA)
class PadaRule(SamplingRule):
    """PA&DA: jointly importance-sample paths and data (Lu et al., CVPR 2023). The variance of the
    supernet's stochastic gradient is smallest when a path / a sample is drawn with probability
    proportional to its (normalised) gradient norm; the norms are those of the previous epoch.

    * Paths: on every edge ``e``, op ``o`` is drawn with ``(1 - uniform_mix) * g[e, o] / sum_o g[e, o]
      + uniform_mix / num_ops`` (over the ops the space allows on ``e``), where ``g[e, o]`` is the L2
      norm of the gradient of that op's parameters (``model.op_parameter_names(e, o)``, every cell),
      read after each step's backward and before clipping, summed over the epoch's steps that sampled
      ``o`` on ``e`` and divided by their number. Parameter-free ops (none, skip, pooling) have no
      gradient, so ``g = 0``: they keep only their uniform share, as in the paper's code (which
      measures the conv ops only). An op not sampled in an epoch keeps its previous ``g``; an edge
      whose ops all have ``g = 0`` stays uniform. With ``num_archs > 1`` the gradients of the step's
      archs accumulate, so ``g`` is that of the step's summed loss (exact for ``num_archs = 1``).
    * Data: sample ``i`` is drawn with ``(1 - data_mix) * d_i / sum d + data_mix / N`` (so ``p_i >=
      data_mix / N``), ``d_i`` its ``||softmax(z) - onehot(y)||`` averaged over its draws in the
      epoch (a sample not drawn keeps its previous value; one never drawn gets the mean of the
      others); training weights its loss by ``1 / (N p_i)``, so the gradient stays unbiased (the
      paper's code resamples without reweighting).
    * Epoch 1 (nothing observed) is uniform: the same archs as ``uniform`` with the same seed.
    ``state()`` holds the distributions in use and the statistics, so a resumed run continues identically.
    """

    observes_samples = True

    @dataclasses.dataclass
    class Config:
        seed: int = bounded(0, ge=0)
        num_archs: int = bounded(1, ge=1)
        uniform_mix: float = bounded(0.2, gt=0.0, le=1.0)  # weight of uniform in each edge's op distribution
        data_mix: float = bounded(0.2, gt=0.0, le=1.0)  # weight of uniform in the data distribution

    def __init__(self, space: SearchSpace, config: Any = None) -> None:
        super().__init__(space, config)
        self.allowed = _allowed_ops(space)  # (edges, ops) bool, or None: not an edge-choice space
        self.op_probs: np.ndarray | None = None  # (edges, ops); None: uniform (``space.sample``)
        zeros = (lambda: None) if self.allowed is None else (lambda: np.zeros(self.allowed.shape))
        self.op_norm, self._op_sum, self._op_count = zeros(), zeros(), zeros()
        self.data_probs: np.ndarray | None = None  # (N,); None: the plain shuffle
        self.sample_norm: np.ndarray | None = None  # (N,) last estimate; nan: never drawn
        self._sample_sum: np.ndarray | None = None
        self._sample_count: np.ndarray | None = None
        self._model: nn.Module | None = None
        self._params: dict[tuple[int, int], list[nn.Parameter]] = {}

    def _next_step(self) -> Step:
        return Step(tuple(self._draw() for _ in range(self.config.num_archs)))

    def _draw(self) -> Arch:
        if self.op_probs is None:
            return self.space.sample(self.rng)
        u = self.rng.random(len(self.op_probs))
        cdf = np.cumsum(self.op_probs, axis=1)
        picks = np.minimum((cdf <= u[:, None] * cdf[:, -1:]).sum(axis=1), self.op_probs.shape[1] - 1)
        return tuple(int(o) for o in picks)

    def bind(self, model: nn.Module) -> None:
        if model is self._model:
            return
        names = getattr(model, "op_parameter_names", None)
        if self.allowed is None or not callable(names):
            raise ValueError(f"sampling rule {PADA!r} needs an edge-choice space (edges, ops) and a supernet with "
                             f"op_parameter_names(edge, op); space {self.space.name!r} / "
                             f"{type(model).__name__} has none")
        by_name = dict(model.named_parameters())
        self._params = {(e, o): [by_name[n] for n in sorted(names(e, o))]
                        for e, o in zip(*np.nonzero(self.allowed))}
        self._model = model

    def observe_step(self, model: nn.Module, step: Step) -> None:
        self.bind(model)
        used = sorted({(e, o) for arch in step.archs for e, o in enumerate(arch)})
        with_grad, norms = [], []
        for key in used:
            grads = [p.grad.detach() for p in self._params[key] if p.grad is not None]
            if grads:  # parameter-free ops (and ops the loss did not reach) add 0
                with_grad.append(key)
                norms.append(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])))
        for key, value in zip(with_grad, torch.stack(norms).float().cpu().tolist() if norms else []):
            self._op_sum[key] += value
        for key in used:
            self._op_count[key] += 1

    def epoch_weights(self, num_samples: int) -> np.ndarray | None:
        if self.sample_norm is None:
            self.sample_norm = np.full(num_samples, np.nan)
            self._sample_sum, self._sample_count = np.zeros(num_samples), np.zeros(num_samples)
        if len(self.sample_norm) != num_samples:
            raise ValueError(f"{PADA}: statistics are for {len(self.sample_norm)} samples, the train split has "
                             f"{num_samples}")
        return self.data_probs

    def observe_samples(self, indices: np.ndarray, grad_norms: np.ndarray) -> None:
        if self._sample_sum is None:
            raise RuntimeError(f"{PADA}: observe_samples before epoch_weights(num_samples)")
        np.add.at(self._sample_sum, indices, grad_norms)
        np.add.at(self._sample_count, indices, 1)

    def end_epoch(self) -> None:
        if self.op_norm is not None and self._op_count.any():
            seen = self._op_count > 0
            self.op_norm[seen] = self._op_sum[seen] / self._op_count[seen]
            self.op_probs = _mix(self.op_norm * self.allowed, self.allowed, self.config.uniform_mix)
            self._op_sum[:], self._op_count[:] = 0.0, 0.0
        if self._sample_count is not None and self._sample_count.any():
            seen = self._sample_count > 0
            self.sample_norm[seen] = self._sample_sum[seen] / self._sample_count[seen]
            norms = np.where(np.isnan(self.sample_norm), np.nanmean(self.sample_norm), self.sample_norm)
            self.data_probs = _mix(norms[None], np.ones((1, len(norms)), bool), self.config.data_mix)[0]
            self._sample_sum[:], self._sample_count[:] = 0.0, 0.0

    def state(self) -> dict[str, Any]:
        arrays = {k: getattr(self, k) for k in _PADA_ARRAYS}
        return {**super().state(), **{k: None if v is None else v.tolist() for k, v in arrays.items()}}

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        for key in _PADA_ARRAYS:
            if key in state:  # a state without PA&DA statistics (another rule's) keeps the current ones
                value = state[key]
                setattr(self, key, None if value is None else np.array(value, dtype=np.float64))


_PADA_ARRAYS = ("op_probs", "op_norm", "_op_sum", "_op_count", "data_probs", "sample_norm", "_sample_sum",
                "_sample_count")


def _allowed_ops(space: SearchSpace) -> np.ndarray | None:
    """``(edges, ops)`` mask of the ops each edge may take: all of ``space.ops`` on each of
    ``space.edges``, narrowed by a few-shot ``RestrictedSpace``'s ``sub.ops(edge)``; None when the
    space is not an edge-choice space."""
    edges, ops = getattr(space, "edges", None), getattr(space, "ops", None)
    if edges is None or ops is None or callable(ops):
        return None
    mask = np.ones((len(edges), len(ops)), dtype=bool)
    sub = getattr(space, "sub", None)
    if sub is not None and callable(getattr(sub, "ops", None)):
        for e in range(len(edges)):
            mask[e] = [o in sub.ops(e) for o in range(len(ops))]
    return mask


def _mix(scores: np.ndarray, allowed: np.ndarray, mix: float) -> np.ndarray:
    """Row-wise ``(1 - mix) * scores / sum + mix * uniform`` over the allowed entries (uniform where a
    row's scores sum to 0)."""
    uniform = allowed / allowed.sum(axis=1, keepdims=True)
    total = scores.sum(axis=1, keepdims=True)
    share = np.divide(scores, total, out=uniform.copy(), where=total > 0)
    return (1.0 - mix) * share + mix * uniform


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

