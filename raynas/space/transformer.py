"""An elastic ViT-style encoder space (AutoFormer / HAT weight entanglement): embedding dim, depth, and
per layer the number of attention heads and the MLP ratio.

The skeleton is fixed by ``TransformerSpace.Config``: the image is cut into ``patch_size`` x
``patch_size`` patches (``(resolution / patch_size) ** 2`` tokens) embedded by a linear map, a learned
class token is prepended (so ``num_tokens = patches + 1``), learned position embeddings are added, then
up to ``max(depths)`` pre-norm encoder layers run (``x + Attn(LN(x))``, ``x + MLP(LN(x))``), a final
LayerNorm is applied to the class token and a linear head gives the logits.

An arch is a ``TransformerArch`` (a NamedTuple, so a hashable tuple): the model-wide ``embed_dim`` and
``depth``, and per layer slot (``max(depths)`` of them) ``heads`` and ``mlp_ratios``; only the first
``depth`` layers run. Its string id lists every slot, e.g. ``e48|d2|h4m2,h2m4,h2m2,h4m3``.

Dimension rule: every head has the fixed width ``head_dim`` (AutoFormer's rule), so a layer with ``h``
heads has q/k/v width ``Q = h * head_dim`` (independent of the embedding dim), and its MLP hidden width
is ``mlp_ratio * embed_dim``.

Functional hash (``canonical``): settings of layers beyond ``depth`` never run, so they are dropped
(``normalize`` sets them to the smallest choices); every other change of a gene changes the function.
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

SPACE_NAME = "transformer"
PART_SEP, LAYER_SEP = "|", ","
_EMBED_RE = re.compile(r"^e(\d+)$")
_DEPTH_RE = re.compile(r"^d(\d+)$")
_LAYER_RE = re.compile(r"^h(\d+)m(\d+)$")
ENUMERATE_LIMIT = 1_000_000
EMBED, DEPTH, HEADS, MLP = "embed", "depth", "heads", "mlp"
_FIELDS = {EMBED: "embed_dim", DEPTH: "depth", HEADS: "heads", MLP: "mlp_ratios"}
CLS_TOKENS = 1  # the class token prepended to the patch tokens


class TransformerArch(NamedTuple):
    """Model-wide ``embed_dim`` and ``depth``; per layer slot ``heads`` and ``mlp_ratios``."""

    embed_dim: int
    depth: int
    heads: tuple[int, ...]
    mlp_ratios: tuple[int, ...]


def as_arch(arch: tuple) -> TransformerArch:
    """``arch`` as a ``TransformerArch`` (plain 4-tuples are accepted everywhere)."""
    return arch if isinstance(arch, TransformerArch) else TransformerArch(*arch)


def _field(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


@SPACES.register(SPACE_NAME)
class TransformerSpace(SearchSpace):
    """Elastic embed-dim/depth/heads/MLP-ratio ViT encoder space; see the module docstring."""

    name = SPACE_NAME

    @dataclasses.dataclass
    class Config:
        """The fixed skeleton and the elastic choices. Defaults fit 8x8 one-channel digits (10 classes):
        patch size 2 gives 16 patch tokens (+ the class token)."""

        embed_dims: list[int] = dataclasses.field(default_factory=lambda: [32, 48, 64])
        depths: list[int] = dataclasses.field(default_factory=lambda: [2, 3, 4])
        num_heads: list[int] = dataclasses.field(default_factory=lambda: [2, 4])
        mlp_ratios: list[int] = dataclasses.field(default_factory=lambda: [2, 3, 4])
        head_dim: int = bounded(16, ge=1)
        patch_size: int = bounded(2, ge=1)
        resolution: int = bounded(8, ge=1)
        in_channels: int = bounded(1, ge=1)
        num_classes: int = bounded(10, ge=2)

        def validate(self, path: str = "") -> None:
            """Raise ``RecipeError`` naming the field when the skeleton is inconsistent."""
            increasing_choices(self.embed_dims, path, "embed_dims")
            increasing_choices(self.depths, path, "depths")
            increasing_choices(self.num_heads, path, "num_heads")
            increasing_choices(self.mlp_ratios, path, "mlp_ratios")
            if self.resolution % self.patch_size:
                raise RecipeError(_field(path, "patch_size"), f"must divide resolution {self.resolution}, "
                                  f"got {self.patch_size}")

    def __init__(self, config: "TransformerSpace.Config | None" = None) -> None:
        super().__init__(config)
        cfg = self.config
        cfg.validate()
        self.embed_choices = tuple(cfg.embed_dims)
        self.depth_choices = tuple(cfg.depths)
        self.head_choices = tuple(cfg.num_heads)
        self.mlp_choices = tuple(cfg.mlp_ratios)
        self.max_depth = max(cfg.depths)
        self.num_patches = (cfg.resolution // cfg.patch_size) ** 2
        self.num_tokens = self.num_patches + CLS_TOKENS

    def is_active(self, arch: TransformerArch, layer: int) -> bool:
        """Whether layer slot ``layer`` runs in ``arch`` (it is below the depth)."""
        return layer < arch[1]

    def qkv_dim(self, heads: int) -> int:
        """Width of each of q, k, v for a layer with ``heads`` heads (fixed ``head_dim`` per head)."""
        return heads * self.config.head_dim

    # ----- sampling and variation ----------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> TransformerArch:
        """Uniform: embed dim, depth and every slot's heads and MLP ratio drawn independently."""
        def pick(choices, n):
            return tuple(int(choices[i]) for i in rng.integers(0, len(choices), size=n))
        (embed,), (depth,) = pick(self.embed_choices, 1), pick(self.depth_choices, 1)
        return TransformerArch(embed, depth, pick(self.head_choices, self.max_depth),
                               pick(self.mlp_choices, self.max_depth))

    def _uniform(self, i: int) -> TransformerArch:
        """Choice index ``i`` (0 or -1) of every gene."""
        n = self.max_depth
        return TransformerArch(self.embed_choices[i], self.depth_choices[i], (self.head_choices[i],) * n,
                               (self.mlp_choices[i],) * n)

    def largest(self) -> TransformerArch:
        """Widest, deepest, most heads and largest MLP ratios (the sandwich rule's top)."""
        return self._uniform(-1)

    def smallest(self) -> TransformerArch:
        """Narrowest, shallowest, fewest heads and smallest MLP ratios (the sandwich rule's bottom)."""
        return self._uniform(0)

    def _mutation_options(self, arch: TransformerArch) -> list[tuple[str, int, list[int]]]:
        """(gene, layer or -1, alternatives) for every gene whose change alters the function."""
        options = []
        for gene, choices, value in ((EMBED, self.embed_choices, arch.embed_dim),
                                     (DEPTH, self.depth_choices, arch.depth)):
            if len(choices) > 1:
                options.append((gene, -1, [c for c in choices if c != value]))
        for layer in range(arch.depth):
            for gene, choices, values in ((HEADS, self.head_choices, arch.heads),
                                          (MLP, self.mlp_choices, arch.mlp_ratios)):
                if len(choices) > 1:
                    options.append((gene, layer, [c for c in choices if c != values[layer]]))
        return options

    def mutate(self, arch: TransformerArch, rng: np.random.Generator) -> TransformerArch:
        """Change one uniformly chosen *functional* gene (embed dim, depth, or an active layer's heads or
        MLP ratio) to another uniformly chosen value: the child always has another ``canonical``."""
        arch = as_arch(arch)
        options = self._mutation_options(arch)
        if not options:
            raise ValueError(f"{self.name} space with a single architecture cannot mutate {self.to_str(arch)!r}")
        gene, layer, values = options[int(rng.integers(len(options)))]
        value = int(values[int(rng.integers(len(values)))])
        if layer < 0:
            return arch._replace(**{_FIELDS[gene]: value})
        genes = list(getattr(arch, _FIELDS[gene]))
        genes[layer] = value
        return arch._replace(**{_FIELDS[gene]: tuple(genes)})

    def crossover(self, a: TransformerArch, b: TransformerArch, rng: np.random.Generator) -> TransformerArch:
        """Uniform crossover: embed dim, depth and every layer's heads and MLP ratio from ``a`` or ``b``
        with probability 1/2 each."""
        a, b = as_arch(a), as_arch(b)
        take = rng.random(2 + 2 * self.max_depth) < 0.5
        def mix(x, y, m):
            return tuple(int(p if keep else q) for p, q, keep in zip(x, y, m))
        n = self.max_depth
        return TransformerArch(int(a.embed_dim if take[0] else b.embed_dim), int(a.depth if take[1] else b.depth),
                               mix(a.heads, b.heads, take[2:2 + n]), mix(a.mlp_ratios, b.mlp_ratios, take[2 + n:]))

    # ----- identity -------------------------------------------------------------------------------
    def normalize(self, arch: TransformerArch) -> TransformerArch:
        """The representative of ``arch``'s function: layers beyond the depth set to the smallest choices."""
        arch = as_arch(arch)
        pad = self.max_depth - arch.depth
        return arch._replace(heads=tuple(arch.heads[:arch.depth]) + (self.head_choices[0],) * pad,
                             mlp_ratios=tuple(arch.mlp_ratios[:arch.depth]) + (self.mlp_choices[0],) * pad)

    def canonical(self, arch: TransformerArch) -> str:
        """Digest of ``to_str(normalize(arch))``: equal iff the two archs compute the same function."""
        return hashlib.blake2b(self.to_str(self.normalize(arch)).encode(), digest_size=8).hexdigest()

    def to_str(self, arch: TransformerArch) -> str:
        arch = as_arch(arch)
        layers = LAYER_SEP.join(f"h{h}m{m}" for h, m in zip(arch.heads, arch.mlp_ratios))
        return PART_SEP.join((f"e{arch.embed_dim}", f"d{arch.depth}", layers))

    def from_str(self, s: str) -> TransformerArch:
        parts = s.strip().split(PART_SEP)
        if len(parts) != 3:
            raise ValueError(f"{self.name} arch {s!r}: expected 'e<embed>{PART_SEP}d<depth>{PART_SEP}h<h>m<m>,...' "
                             f"(3 '{PART_SEP}'-separated parts), got {len(parts)} parts")
        embed = self._number(_EMBED_RE, parts[0], s, "embed dim", "e64")
        depth = self._number(_DEPTH_RE, parts[1], s, "depth", "d3")
        embed = self._choice(embed, self.embed_choices, s, "embed dim")
        depth = self._choice(depth, self.depth_choices, s, "depth")
        layers = parts[2].split(LAYER_SEP)
        if len(layers) != self.max_depth:
            raise ValueError(f"{self.name} arch {s!r}: needs {self.max_depth} layers, got {len(layers)}")
        heads, mlps = [], []
        for i, text in enumerate(layers):
            m = _LAYER_RE.match(text.strip())
            if not m:
                raise ValueError(f"{self.name} arch {s!r}: layer {i} {text!r} must look like 'h4m2'")
            heads.append(self._choice(int(m.group(1)), self.head_choices, s, f"layer {i} heads"))
            mlps.append(self._choice(int(m.group(2)), self.mlp_choices, s, f"layer {i} mlp ratio"))
        return TransformerArch(embed, depth, tuple(heads), tuple(mlps))

    def _number(self, pattern: re.Pattern, text: str, s: str, what: str, example: str) -> int:
        match = pattern.match(text.strip())
        if not match:
            raise ValueError(f"{self.name} arch {s!r}: {what} {text!r} must look like {example!r}")
        return int(match.group(1))

    def _choice(self, value: int, choices: tuple[int, ...], s: str, what: str) -> int:
        if value not in choices:
            raise ValueError(f"{self.name} arch {s!r}: {what} {value} is not one of {', '.join(map(str, choices))}")
        return value

    def contains(self, arch: object) -> bool:
        if not (isinstance(arch, tuple) and len(arch) == 4):
            return False
        embed, depth, heads, mlps = arch

        def ok(genes, choices):
            return (isinstance(genes, tuple) and len(genes) == self.max_depth
                    and all(type(g) is int and g in choices for g in genes))

        return (type(embed) is int and embed in self.embed_choices and type(depth) is int
                and depth in self.depth_choices and ok(heads, self.head_choices) and ok(mlps, self.mlp_choices))

    # ----- encodings and counts -------------------------------------------------------------------
    @property
    def functional_encoding_size(self) -> int:
        """Length of the encoding's first part, a function of ``canonical(arch)`` alone."""
        per_layer = len(self.head_choices) + len(self.mlp_choices)
        return len(self.embed_choices) + len(self.depth_choices) + self.max_depth * per_layer

    @property
    def encoding_size(self) -> int:
        return self.functional_encoding_size + self.max_depth * (len(self.head_choices) + len(self.mlp_choices))

    def encode(self, arch: TransformerArch) -> np.ndarray:
        """Two parts. First (``functional_encoding_size``): one-hot embed dim and depth, then per layer
        one-hot heads and MLP ratio for active layers (zero for inactive ones) — equal for archs of one
        ``canonical``. Then the inactive layers' settings, one-hot (zero for active layers), so distinct
        arch values encode differently (the contract); predictors may use the first part only."""
        arch = as_arch(arch)
        out = np.zeros(self.encoding_size, dtype=np.float32)
        ne, nh, nm = len(self.embed_choices), len(self.head_choices), len(self.mlp_choices)
        out[self.embed_choices.index(arch.embed_dim)] = 1.0
        out[ne + self.depth_choices.index(arch.depth)] = 1.0
        base = ne + len(self.depth_choices)
        for layer in range(self.max_depth):
            part = 0 if self.is_active(arch, layer) else self.max_depth * (nh + nm)
            offset = base + part + layer * (nh + nm)
            out[offset + self.head_choices.index(arch.heads[layer])] = 1.0
            out[offset + nh + self.mlp_choices.index(arch.mlp_ratios[layer])] = 1.0
        return out

    def size(self) -> int:
        """Number of distinct arch values (inactive layer settings included)."""
        per_layer = len(self.head_choices) * len(self.mlp_choices)
        return len(self.embed_choices) * len(self.depth_choices) * per_layer ** self.max_depth

    def functional_size(self) -> int:
        """Number of distinct functions (distinct ``canonical`` keys)."""
        per_layer = len(self.head_choices) * len(self.mlp_choices)
        return len(self.embed_choices) * sum(per_layer ** d for d in self.depth_choices)

    def enumerate(self) -> Iterator[TransformerArch]:
        """Every arch value, for small configurations only (``size() <= ENUMERATE_LIMIT``)."""
        if self.size() > ENUMERATE_LIMIT:
            raise NotImplementedError(f"{self.name} space has {self.size()} archs; too many to enumerate")
        for embed, depth in itertools.product(self.embed_choices, self.depth_choices):
            for heads in itertools.product(self.head_choices, repeat=self.max_depth):
                for mlps in itertools.product(self.mlp_choices, repeat=self.max_depth):
                    yield TransformerArch(embed, depth, heads, mlps)

    def describe_mutation(self, parent: TransformerArch, child: TransformerArch) -> str:
        """Functional changes, e.g. ``embed:32->48;l1.heads:2->4`` (layers 0-based)."""
        p, c = self.normalize(parent), self.normalize(child)
        changes = [f"{gene}:{a}->{b}" for gene, a, b in ((EMBED, p.embed_dim, c.embed_dim), (DEPTH, p.depth, c.depth))
                   if a != b]
        for layer in range(min(p.depth, c.depth)):
            for gene, field in ((HEADS, p.heads), (MLP, p.mlp_ratios)):
                a, b = field[layer], getattr(c, _FIELDS[gene])[layer]
                if a != b:
                    changes.append(f"l{layer}.{gene}:{a}->{b}")
        return ";".join(changes)

    # ----- analytic cost (must match raynas.supernet.transformer) ---------------------------------
    def cost(self, arch: TransformerArch) -> Cost:
        """Closed-form multiply-accumulates of one image and parameter count of the subnet.

        With ``E`` = embed dim, ``T`` = tokens (patches + class token), ``P`` = patches, ``c = in_channels
        * patch_size ** 2`` and per layer ``Q = heads * head_dim``, ``H = mlp_ratio * E``:
          * MACs: patch embedding ``P c E``; per layer qkv ``3 T E Q``, attention scores ``T T Q``,
            attention-weighted values ``T T Q``, projection ``T Q E``, MLP ``2 T E H``; head ``E K``.
            Biases, LayerNorms, softmax, GELU, scaling and residual/position additions are not counted
            (torch's FLOP counter counts exactly the matmuls and convolutions, 2 FLOPs per MAC).
          * Params: patch embedding ``c E + E``, class token ``E``, position embedding ``T E``; per layer
            two LayerNorms ``4 E``, qkv ``3 E Q + 3 Q``, projection ``Q E + E``, MLP ``2 E H + H + E``;
            final LayerNorm ``2 E``; head ``E K + K``.
        """
        cfg, arch = self.config, as_arch(arch)
        e, t, k = arch.embed_dim, self.num_tokens, cfg.num_classes
        c = cfg.in_channels * cfg.patch_size ** 2
        flops = self.num_patches * c * e + e * k
        params = c * e + e + e + t * e + 2 * e + e * k + k
        for layer in range(arch.depth):
            q, h = self.qkv_dim(arch.heads[layer]), arch.mlp_ratios[layer] * e
            flops += 3 * t * e * q + 2 * t * t * q + t * q * e + 2 * t * e * h
            params += 4 * e + 3 * e * q + 3 * q + q * e + e + 2 * e * h + h + e
        return Cost(int(flops), int(params))

    def flops(self, arch: TransformerArch) -> int:
        """Multiply-accumulates of one forward pass of one image (the OFA/AutoFormer 'FLOPs' convention)."""
        return self.cost(arch).flops

    def params(self, arch: TransformerArch) -> int:
        return self.cost(arch).params
