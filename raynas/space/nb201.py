"""The NAS-Bench-201 cell space: a 4-node DAG, 6 edges, each carrying one of 5 ops (5**6 = 15,625 archs).

An arch is a tuple of 6 op indices in the benchmark's edge order (1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2),
rendered in the benchmark's own string format ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``.

Functional hash (``canonical``)
-------------------------------
``functional_form(arch)`` writes the output node as an expression of the input ``0``: each op edge
wraps its source node's expression as ``(expr)@op``, ``skip_connect`` passes the expression through
unchanged (it is the identity), a node is the sorted ``+``-sum of its input terms (sums commute, so
isomorphic cells — e.g. the two intermediate nodes swapped — get one form), and ``none`` edges, or
edges whose source is identically zero, contribute no term. ``canonical`` is a short digest of that
form. Result: **5,390** distinct functions among the 15,625 archs.

The NB201 paper counts **6,466** "unique topologies". Its code (``CellStructure.to_unique_str(
consider_zero=True)``) does the same, except that it keeps a ``#`` term for every zero input, so
``x + 0`` and ``x`` get different keys although they compute the same function. With
``keep_zero_terms=True`` our form reproduces the paper's 6,466 exactly (both counts are tested).
One caveat applies to both: a conv (ReLU-Conv-BN) fed an all-zero input outputs BN's bias, a
constant, which both rules treat as zero; it carries no information about the input.
"""
from __future__ import annotations

import hashlib
import itertools
from typing import Iterator

import numpy as np

from raynas.space.base import SPACES, SearchSpace

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NONE = 0
# (target node, source node) for each of the 6 edges, in the benchmark's string order.
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
NUM_NODES = 4
INPUT, OUTPUT = 0, 3

NB201Arch = tuple[int, ...]


ZERO_TERM = "#"


def functional_form(arch: NB201Arch, keep_zero_terms: bool = False) -> str:
    """The cell's output as an expression of its input (see the module docstring)."""
    nodes = {INPUT: "0"}
    edge_ops = dict(zip(EDGES, arch))
    for dst in range(1, NUM_NODES):
        terms = []
        for src in range(dst):
            op, src_expr = OPS[edge_ops[(dst, src)]], nodes[src]
            if op == "none" or src_expr == ZERO_TERM:
                if keep_zero_terms:
                    terms.append(ZERO_TERM)
            elif op == "skip_connect":
                terms.append(src_expr)
            else:
                terms.append(f"({src_expr})@{op}")
        nodes[dst] = "+".join(sorted(terms)) if terms else ZERO_TERM
    return nodes[OUTPUT]


@SPACES.register("nb201")
class NB201Space(SearchSpace):
    """NAS-Bench-201 cell space (Dong & Yang, 2020). Pure Python; see the module docstring for hashing."""

    name = "nb201"
    ops = OPS
    edges = EDGES

    def sample(self, rng: np.random.Generator) -> NB201Arch:
        return tuple(int(x) for x in rng.integers(0, len(OPS), size=len(EDGES)))

    def mutate(self, arch: NB201Arch, rng: np.random.Generator) -> NB201Arch:
        """Change one uniformly chosen edge to a different, uniformly chosen op."""
        edge = int(rng.integers(len(EDGES)))
        new_op = int(rng.integers(len(OPS) - 1))
        new_op += new_op >= arch[edge]
        child = list(arch)
        child[edge] = new_op
        return tuple(child)

    def neighbours(self, arch: NB201Arch) -> list[NB201Arch]:
        """The 6 × 4 = 24 archs differing from ``arch`` in one edge's op (edge order, then op order)."""
        return [arch[:edge] + (op,) + arch[edge + 1:]
                for edge in range(len(EDGES)) for op in range(len(OPS)) if op != arch[edge]]

    def crossover(self, a: NB201Arch, b: NB201Arch, rng: np.random.Generator) -> NB201Arch:
        """Uniform crossover: each edge's op comes from ``a`` or ``b`` with probability 1/2."""
        mask = rng.random(len(EDGES)) < 0.5
        return tuple(int(x if m else y) for x, y, m in zip(a, b, mask))

    def encode(self, arch: NB201Arch) -> np.ndarray:
        """One-hot per edge, edges in benchmark order: a vector of 6 × 5 = 30 floats."""
        out = np.zeros((len(EDGES), len(OPS)), dtype=np.float32)
        out[np.arange(len(EDGES)), list(arch)] = 1.0
        return out.ravel()

    @property
    def encoding_size(self) -> int:
        return len(EDGES) * len(OPS)

    def to_str(self, arch: NB201Arch) -> str:
        nodes: list[list[str]] = [[] for _ in range(NUM_NODES)]
        for (dst, src), op in zip(EDGES, arch):
            nodes[dst].append(f"{OPS[op]}~{src}")
        return "+".join("|" + "|".join(n) + "|" for n in nodes[1:])

    def from_str(self, s: str) -> NB201Arch:
        parts = s.strip().split("+")
        if len(parts) != NUM_NODES - 1:
            raise ValueError(f"nb201 arch {s!r}: expected 3 '+'-separated nodes, got {len(parts)}")
        arch: list[int] = []
        for dst, part in enumerate(parts, start=1):
            if not (part.startswith("|") and part.endswith("|")):
                raise ValueError(f"nb201 arch {s!r}: node {dst} must be wrapped in '|'")
            inputs = part[1:-1].split("|")
            if len(inputs) != dst:
                raise ValueError(f"nb201 arch {s!r}: node {dst} needs {dst} inputs, got {len(inputs)}")
            for src, item in enumerate(inputs):
                op, _, src_txt = item.partition("~")
                if op not in OPS:
                    raise ValueError(f"nb201 arch {s!r}: unknown op {op!r}; ops: {', '.join(OPS)}")
                if src_txt != str(src):
                    raise ValueError(f"nb201 arch {s!r}: input {item!r} of node {dst} must come from node {src}")
                arch.append(OPS.index(op))
        return tuple(arch)

    def contains(self, arch: object) -> bool:
        return (
            isinstance(arch, tuple)
            and len(arch) == len(EDGES)
            and all(isinstance(x, int) and 0 <= x < len(OPS) for x in arch)
        )

    def canonical(self, arch: NB201Arch) -> str:
        """Digest of ``functional_form``: equal iff the two cells compute the same function."""
        return hashlib.blake2b(functional_form(arch).encode(), digest_size=8).hexdigest()

    def size(self) -> int:
        return len(OPS) ** len(EDGES)

    def enumerate(self) -> Iterator[NB201Arch]:
        """All 15,625 archs in lexicographic op-index order (the benchmark's own index order is a
        permutation stored in its table: see ``raynas.evaluators.nb201_table.NB201Table.index_of``)."""
        return (tuple(a) for a in itertools.product(range(len(OPS)), repeat=len(EDGES)))

    def describe_mutation(self, parent: NB201Arch, child: NB201Arch) -> str:
        changed = [i for i, (p, c) in enumerate(zip(parent, child)) if p != c]
        return ";".join(
            f"edge{EDGES[i][1]}->{EDGES[i][0]}:{OPS[parent[i]]}->{OPS[child[i]]}" for i in changed
        )
