"""An elastic MobileNetV3-style space (Once-for-All, BigNAS): per-stage depth, per-block kernel and expand.

The skeleton — stem, ``len(stage_widths)`` stages of inverted-residual (MBConv) blocks, head, classifier —
is fixed by ``MBV3Space.Config``; an arch chooses, for every stage, how many of its ``max(depths)``
block slots run (the first ``depth``), and for every slot a depthwise kernel size and an expand ratio.

An arch is an ``MBV3Arch`` (a NamedTuple, so a hashable tuple of tuples): ``depths`` (one per stage),
``kernels`` and ``expands`` (one per slot, stage-major: slot = stage * max_depth + block). Its string
id lists every slot, e.g. ``d2:k3e4,k5e6,k7e3,k3e3|d3:...`` (stages split by ``|``; the first ``d``
blocks of a stage are active).

Functional hash (``canonical``)
-------------------------------
Two archs compute the same function when they agree after ``normalize``:
  * slots beyond a stage's depth never run, so their settings are dropped;
  * a depthwise kernel only matters through the input offsets it can reach: on a small feature map
    (e.g. 2x2 at the end of an 8x8 network) a 7x7, 5x5 and 3x3 kernel touch the same pixels and the
    outer taps only ever multiply padding. Such kernels are one class, written as its smallest member.
This holds for standalone subnets and for the weight-sharing supernet (which center-crops kernels).
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import re
from typing import Iterator, NamedTuple

import numpy as np

from raynas.errors import RecipeError
from raynas.space.base import SPACES, Cost, SearchSpace, increasing_choices
from raynas.typed import bounded

STAGE_SEP, BLOCK_SEP = "|", ","
_STAGE_RE = re.compile(r"^d(\d+):(.*)$")
_BLOCK_RE = re.compile(r"^k(\d+)e(\d+)$")
ENUMERATE_LIMIT = 1_000_000
DEPTH, KERNEL, EXPAND = "depth", "kernel", "expand"


class MBV3Arch(NamedTuple):
    """Per-stage ``depths``; per-slot ``kernels`` and ``expands`` (slot = stage * max_depth + block)."""

    depths: tuple[int, ...]
    kernels: tuple[int, ...]
    expands: tuple[int, ...]


def as_arch(arch: tuple) -> MBV3Arch:
    """``arch`` as an ``MBV3Arch`` (plain ``(depths, kernels, expands)`` tuples are accepted everywhere)."""
    return arch if isinstance(arch, MBV3Arch) else MBV3Arch(*arch)


@SPACES.register("mbv3")
class MBV3Space(SearchSpace):
    """Elastic depth/kernel/expand MobileNetV3-style space; see the module docstring."""

    name = "mbv3"

    @dataclasses.dataclass
    class Config:
        """The fixed skeleton and the elastic choices. Defaults fit 8x8 one-channel digits (10 classes)."""

        depths: list[int] = dataclasses.field(default_factory=lambda: [2, 3, 4])
        kernel_sizes: list[int] = dataclasses.field(default_factory=lambda: [3, 5, 7])
        expand_ratios: list[int] = dataclasses.field(default_factory=lambda: [3, 4, 6])
        stage_widths: list[int] = dataclasses.field(default_factory=lambda: [8, 12, 16, 24, 32])
        stage_strides: list[int] = dataclasses.field(default_factory=lambda: [1, 2, 1, 1, 2])
        stem_width: int = bounded(8, ge=1)
        head_width: int = bounded(64, ge=1)
        resolution: int = bounded(8, ge=1)
        in_channels: int = bounded(1, ge=1)
        num_classes: int = bounded(10, ge=2)

        def validate(self, path: str = "") -> None:
            """Raise ``RecipeError`` naming the field when the skeleton is inconsistent."""
            increasing_choices(self.depths, path, "depths")
            increasing_choices(self.kernel_sizes, path, "kernel_sizes")
            increasing_choices(self.expand_ratios, path, "expand_ratios")
            if any(k % 2 == 0 for k in self.kernel_sizes):
                raise RecipeError(f"{path}.kernel_sizes" if path else "kernel_sizes",
                                  f"must be odd, got {self.kernel_sizes!r}")
            if not self.stage_widths or min(self.stage_widths) < 1:
                raise RecipeError(f"{path}.stage_widths" if path else "stage_widths",
                                  f"must be a non-empty list of positive ints, got {self.stage_widths!r}")
            if len(self.stage_strides) != len(self.stage_widths) or set(self.stage_strides) - {1, 2}:
                raise RecipeError(f"{path}.stage_strides" if path else "stage_strides",
                                  f"must be 1 or 2, one per stage width, got {self.stage_strides!r}")

    def __init__(self, config: "MBV3Space.Config | None" = None) -> None:
        super().__init__(config)
        cfg = self.config
        cfg.validate()
        self.depth_choices = tuple(cfg.depths)
        self.kernel_choices = tuple(cfg.kernel_sizes)
        self.expand_choices = tuple(cfg.expand_ratios)
        self.num_stages = len(cfg.stage_widths)
        self.max_depth = max(cfg.depths)
        self.num_slots = self.num_stages * self.max_depth
        self.stage_resolutions = self._resolutions()
        self._kernel_class = [self._slot_kernel_classes(slot) for slot in range(self.num_slots)]

    # ----- skeleton geometry -------------------------------------------------------------------
    def _resolutions(self) -> tuple[tuple[int, int], ...]:
        """(input, output) feature-map size of every stage (stride 2 in its first block, 'same' padding)."""
        out, res = [], self.config.resolution
        for stride in self.config.stage_strides:
            res_out = (res - 1) // stride + 1
            out.append((res, res_out))
            res = res_out
        return tuple(out)

    def slot_geometry(self, slot: int) -> tuple[int, int, int, int]:
        """``(in_channels, out_channels, stride, input_resolution)`` of the block in ``slot``."""
        stage, block = divmod(slot, self.max_depth)
        width = self.config.stage_widths[stage]
        res_in, res_out = self.stage_resolutions[stage]
        if block == 0:
            prev = self.config.stage_widths[stage - 1] if stage else self.config.stem_width
            return prev, width, self.config.stage_strides[stage], res_in
        return width, width, 1, res_out

    def _slot_kernel_classes(self, slot: int) -> dict[int, int]:
        """Map each kernel choice to the smallest choice that reaches the same input offsets."""
        _, _, stride, res = self.slot_geometry(slot)
        res_out = (res - 1) // stride + 1

        def reach(k: int) -> tuple[int, int]:
            pad = k // 2
            return max(-pad, -stride * (res_out - 1)), min(pad, res - 1)

        first: dict[tuple[int, int], int] = {}
        for k in self.kernel_choices:
            first.setdefault(reach(k), k)
        return {k: first[reach(k)] for k in self.kernel_choices}

    def effective_kernel(self, slot: int, kernel: int) -> int:
        """The smallest kernel choice equivalent to ``kernel`` in ``slot`` (same reachable input pixels)."""
        return self._kernel_class[slot][kernel]

    def is_active(self, arch: MBV3Arch, slot: int) -> bool:
        """Whether ``slot`` runs in ``arch`` (its block index is below its stage's depth)."""
        stage, block = divmod(slot, self.max_depth)
        return block < arch[0][stage]

    def active_slots(self, arch: MBV3Arch) -> list[int]:
        return [s for s in range(self.num_slots) if self.is_active(arch, s)]

    # ----- sampling and variation ----------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> MBV3Arch:
        """Uniform: every stage's depth and every slot's kernel and expand drawn independently."""
        def pick(choices, n):
            return tuple(int(choices[i]) for i in rng.integers(0, len(choices), size=n))
        return MBV3Arch(pick(self.depth_choices, self.num_stages),
                        pick(self.kernel_choices, self.num_slots),
                        pick(self.expand_choices, self.num_slots))

    def largest(self) -> MBV3Arch:
        """Deepest stages, largest kernels and expand ratios everywhere (the sandwich rule's top)."""
        return MBV3Arch((self.depth_choices[-1],) * self.num_stages,
                        (self.kernel_choices[-1],) * self.num_slots,
                        (self.expand_choices[-1],) * self.num_slots)

    def smallest(self) -> MBV3Arch:
        """Shallowest stages, smallest kernels and expand ratios everywhere (the sandwich rule's bottom)."""
        return MBV3Arch((self.depth_choices[0],) * self.num_stages,
                        (self.kernel_choices[0],) * self.num_slots,
                        (self.expand_choices[0],) * self.num_slots)

    def _mutation_options(self, arch: MBV3Arch) -> list[tuple[str, int, list[int]]]:
        """(gene, index, alternatives) for every gene whose change alters the function."""
        options = [(DEPTH, s, [d for d in self.depth_choices if d != arch.depths[s]])
                   for s in range(self.num_stages) if len(self.depth_choices) > 1]
        for slot in self.active_slots(arch):
            classes = self._kernel_class[slot]
            kernels = [k for k in self.kernel_choices
                       if k == classes[k] and k != classes[arch.kernels[slot]]]
            if kernels:
                options.append((KERNEL, slot, kernels))
            if len(self.expand_choices) > 1:
                options.append((EXPAND, slot, [e for e in self.expand_choices if e != arch.expands[slot]]))
        return options

    def mutate(self, arch: MBV3Arch, rng: np.random.Generator) -> MBV3Arch:
        """Change one uniformly chosen *functional* gene (a depth, or an active slot's kernel class or
        expand ratio) to a different uniformly chosen value: the child always has another ``canonical``."""
        arch = as_arch(arch)
        options = self._mutation_options(arch)
        if not options:
            raise ValueError(f"mbv3 space with a single architecture cannot mutate {self.to_str(arch)!r}")
        gene, index, values = options[int(rng.integers(len(options)))]
        value = int(values[int(rng.integers(len(values)))])
        fields = {DEPTH: "depths", KERNEL: "kernels", EXPAND: "expands"}
        genes = list(getattr(arch, fields[gene]))
        genes[index] = value
        return arch._replace(**{fields[gene]: tuple(genes)})

    def crossover(self, a: MBV3Arch, b: MBV3Arch, rng: np.random.Generator) -> MBV3Arch:
        """Uniform crossover: every depth, kernel and expand gene from ``a`` or ``b`` with probability 1/2."""
        a, b = as_arch(a), as_arch(b)
        def mix(x, y):
            return tuple(int(p if m else q) for p, q, m in zip(x, y, rng.random(len(x)) < 0.5))
        return MBV3Arch(mix(a.depths, b.depths), mix(a.kernels, b.kernels), mix(a.expands, b.expands))

    # ----- identity -------------------------------------------------------------------------------
    def normalize(self, arch: MBV3Arch) -> MBV3Arch:
        """The representative of ``arch``'s function: inactive slots set to the smallest choices, active
        kernels replaced by the smallest kernel of their class (see the module docstring)."""
        arch = as_arch(arch)
        kernels, expands = [self.kernel_choices[0]] * self.num_slots, [self.expand_choices[0]] * self.num_slots
        for slot in self.active_slots(arch):
            kernels[slot] = self.effective_kernel(slot, arch.kernels[slot])
            expands[slot] = arch.expands[slot]
        return MBV3Arch(tuple(arch.depths), tuple(kernels), tuple(expands))

    def canonical(self, arch: MBV3Arch) -> str:
        """Digest of ``to_str(normalize(arch))``: equal iff the two archs compute the same function."""
        return hashlib.blake2b(self.to_str(self.normalize(arch)).encode(), digest_size=8).hexdigest()

    def to_str(self, arch: MBV3Arch) -> str:
        arch = as_arch(arch)
        stages = []
        for s in range(self.num_stages):
            slots = range(s * self.max_depth, (s + 1) * self.max_depth)
            blocks = BLOCK_SEP.join(f"k{arch.kernels[i]}e{arch.expands[i]}" for i in slots)
            stages.append(f"d{arch.depths[s]}:{blocks}")
        return STAGE_SEP.join(stages)

    def from_str(self, s: str) -> MBV3Arch:
        parts = s.strip().split(STAGE_SEP)
        if len(parts) != self.num_stages:
            raise ValueError(f"mbv3 arch {s!r}: expected {self.num_stages} '{STAGE_SEP}'-separated stages, "
                             f"got {len(parts)}")
        depths, kernels, expands = [], [], []
        for stage, part in enumerate(parts):
            match = _STAGE_RE.match(part.strip())
            if not match:
                raise ValueError(f"mbv3 arch {s!r}: stage {stage} must look like 'd<depth>:k<k>e<e>,...'")
            depths.append(self._choice(int(match.group(1)), self.depth_choices, s, f"stage {stage} depth"))
            blocks = match.group(2).split(BLOCK_SEP)
            if len(blocks) != self.max_depth:
                raise ValueError(f"mbv3 arch {s!r}: stage {stage} needs {self.max_depth} blocks, got {len(blocks)}")
            for block, text in enumerate(blocks):
                m = _BLOCK_RE.match(text.strip())
                if not m:
                    raise ValueError(f"mbv3 arch {s!r}: block {stage}.{block} {text!r} must look like 'k3e4'")
                where = f"block {stage}.{block}"
                kernels.append(self._choice(int(m.group(1)), self.kernel_choices, s, f"{where} kernel"))
                expands.append(self._choice(int(m.group(2)), self.expand_choices, s, f"{where} expand"))
        return MBV3Arch(tuple(depths), tuple(kernels), tuple(expands))

    @staticmethod
    def _choice(value: int, choices: tuple[int, ...], s: str, what: str) -> int:
        if value not in choices:
            raise ValueError(f"mbv3 arch {s!r}: {what} {value} is not one of {', '.join(map(str, choices))}")
        return value

    def contains(self, arch: object) -> bool:
        if not (isinstance(arch, tuple) and len(arch) == 3):
            return False
        depths, kernels, expands = arch

        def ok(genes, n, choices):
            return isinstance(genes, tuple) and len(genes) == n and all(type(g) is int and g in choices for g in genes)

        return (ok(depths, self.num_stages, self.depth_choices) and ok(kernels, self.num_slots, self.kernel_choices)
                and ok(expands, self.num_slots, self.expand_choices))

    # ----- encodings and counts -------------------------------------------------------------------
    @property
    def encoding_size(self) -> int:
        per_slot = len(self.kernel_choices) + len(self.expand_choices)
        return self.num_stages * len(self.depth_choices) + self.num_slots * per_slot

    def encode(self, arch: MBV3Arch) -> np.ndarray:
        """One-hot depth per stage, then one-hot kernel and expand per slot (all zero for inactive
        slots) of ``normalize(arch)``: functionally equal archs get equal vectors."""
        arch = self.normalize(arch)
        out = np.zeros(self.encoding_size, dtype=np.float32)
        nd, nk, ne = len(self.depth_choices), len(self.kernel_choices), len(self.expand_choices)
        for s, d in enumerate(arch.depths):
            out[s * nd + self.depth_choices.index(d)] = 1.0
        base = self.num_stages * nd
        for slot in self.active_slots(arch):
            offset = base + slot * (nk + ne)
            out[offset + self.kernel_choices.index(arch.kernels[slot])] = 1.0
            out[offset + nk + self.expand_choices.index(arch.expands[slot])] = 1.0
        return out

    def size(self) -> int:
        """Number of distinct arch values (inactive slot settings included)."""
        per_slot = len(self.kernel_choices) * len(self.expand_choices)
        return len(self.depth_choices) ** self.num_stages * per_slot ** self.num_slots

    def functional_size(self) -> int:
        """Number of distinct functions (distinct ``canonical`` keys)."""
        total = 1
        for s in range(self.num_stages):
            per_block = [len(set(self._kernel_class[s * self.max_depth + b].values())) * len(self.expand_choices)
                         for b in range(self.max_depth)]
            total *= sum(int(np.prod(per_block[:d])) for d in self.depth_choices)
        return total

    def enumerate(self) -> Iterator[MBV3Arch]:
        """Every arch value, for tiny configurations only (``size() <= ENUMERATE_LIMIT``)."""
        if self.size() > ENUMERATE_LIMIT:
            raise NotImplementedError(f"mbv3 space has {self.size()} archs; too many to enumerate")
        for depths in itertools.product(self.depth_choices, repeat=self.num_stages):
            for kernels in itertools.product(self.kernel_choices, repeat=self.num_slots):
                for expands in itertools.product(self.expand_choices, repeat=self.num_slots):
                    yield MBV3Arch(depths, kernels, expands)

    def describe_mutation(self, parent: MBV3Arch, child: MBV3Arch) -> str:
        """Functional changes, e.g. ``s1.depth:2->3;s0b1.kernel:3->7`` (stages and blocks 0-based)."""
        p, c = self.normalize(parent), self.normalize(child)
        changes = [f"s{s}.depth:{a}->{b}" for s, (a, b) in enumerate(zip(p.depths, c.depths)) if a != b]
        for slot in range(self.num_slots):
            if not (self.is_active(p, slot) and self.is_active(c, slot)):
                continue
            stage, block = divmod(slot, self.max_depth)
            for gene, a, b in ((KERNEL, p.kernels[slot], c.kernels[slot]), (EXPAND, p.expands[slot], c.expands[slot])):
                if a != b:
                    changes.append(f"s{stage}b{block}.{gene}:{a}->{b}")
        return ";".join(changes)

    # ----- analytic cost (must match raynas.supernet.mbv3) ------------------------------------------
    def cost(self, arch: MBV3Arch) -> Cost:
        """MACs and parameters of the subnet: convs (no bias), BN (2 params per channel, no MACs),
        linear classifier (with bias); activations and pooling are not counted. Kernels count at their
        ``effective_kernel`` size (taps that only ever multiply padding are free), so archs with one
        ``canonical`` key have one cost."""
        cfg, arch = self.config, as_arch(arch)
        res = cfg.resolution
        flops = 9 * cfg.in_channels * cfg.stem_width * res * res
        params = 9 * cfg.in_channels * cfg.stem_width + 2 * cfg.stem_width
        for slot in self.active_slots(arch):
            cin, cout, stride, res_in = self.slot_geometry(slot)
            k, mid = self.effective_kernel(slot, arch.kernels[slot]), cin * arch.expands[slot]
            res_out = (res_in - 1) // stride + 1
            flops += cin * mid * res_in ** 2 + k * k * mid * res_out ** 2 + mid * cout * res_out ** 2
            params += cin * mid + k * k * mid + mid * cout + 2 * (mid + mid + cout)
        last, res = cfg.stage_widths[-1], self.stage_resolutions[-1][1]
        flops += last * cfg.head_width * res * res + cfg.head_width * cfg.num_classes
        params += last * cfg.head_width + 2 * cfg.head_width + (cfg.head_width + 1) * cfg.num_classes
        return Cost(int(flops), int(params))

    def flops(self, arch: MBV3Arch) -> int:
        """Multiply-accumulates of one forward pass of one image (the OFA/BigNAS 'FLOPs' convention)."""
        return self.cost(arch).flops

    def params(self, arch: MBV3Arch) -> int:
        return self.cost(arch).params
