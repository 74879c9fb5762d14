"""Few-shot split trees over an edge-choice space (NB201): sub-spaces, splits and routing.

Few-Shot NAS (Zhao et al., 2021) splits a one-shot supernet on an edge into sub-supernets, one per
group of that edge's ops; GM-NAS (Hu et al., 2022) chooses the edge and the groups by gradient
matching; either can be repeated on the children (a tree). This module is the pure-Python part:

* ``SubSpace``: the archs whose edge ``e`` takes an op in ``allowed[e]`` (every edge not named
  allows every op). ``contains``, uniform ``sample`` and ``size`` work on it like on a space.
* ``SplitTree``: nodes named by their path from the root (``root``, ``root/e0=3``, ``root/e0=1.2/e3=0``);
  ``split(node, edge, groups)`` gives the node one child per group, ``groups`` a partition of the ops
  the node still allows on ``edge``; ``leaves()`` are the sub-supernets that exist; ``route(arch)``
  names the one leaf whose sub-space contains ``arch`` (they partition the root's space, by
  construction, and ``route`` raises if an arch falls outside the root).
Archs are tuples of op indices, one per edge (``NB201Space``'s archs).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

ROOT = "root"
SEP, EDGE_PREFIX, OP_SEP = "/", "e", "."


@dataclasses.dataclass(frozen=True)
class SubSpace:
    """Archs of ``num_edges`` edges with ``num_ops`` ops each, edge ``e`` restricted to ``allowed[e]``."""

    num_edges: int
    num_ops: int
    allowed: Mapping[int, frozenset[int]] = dataclasses.field(default_factory=dict)

    def ops(self, edge: int) -> frozenset[int]:
        """The ops edge ``edge`` may take here."""
        return self.allowed.get(edge, frozenset(range(self.num_ops)))

    def contains(self, arch: Sequence[int]) -> bool:
        return len(arch) == self.num_edges and all(op in self.ops(e) for e, op in enumerate(arch))

    def restrict(self, edge: int, ops: Iterable[int]) -> "SubSpace":
        """This sub-space with ``edge`` further restricted to ``ops`` (a subset of what it allows)."""
        ops = frozenset(ops)
        if not ops or not ops <= self.ops(edge):
            raise ValueError(f"edge {edge}: ops {sorted(ops)} are not a non-empty subset of {sorted(self.ops(edge))}")
        return SubSpace(self.num_edges, self.num_ops, {**self.allowed, edge: ops})

    def sample(self, rng: np.random.Generator) -> tuple[int, ...]:
        """A uniform arch of the sub-space."""
        return tuple(int(rng.choice(sorted(self.ops(e)))) for e in range(self.num_edges))

    def size(self) -> int:
        return int(np.prod([len(self.ops(e)) for e in range(self.num_edges)]))

    def splittable(self) -> list[int]:
        """Edges that still allow more than one op."""
        return [e for e in range(self.num_edges) if len(self.ops(e)) > 1]


@dataclasses.dataclass(frozen=True)
class SplitNode:
    """One (sub-)supernet of the tree: its id, sub-space, parent, and the split that made it."""

    id: str
    space: SubSpace
    parent: str | None = None
    edge: int | None = None  # the edge its parent was split on
    ops: tuple[int, ...] = ()  # the ops of that edge this node keeps


def child_id(parent: str, edge: int, ops: Iterable[int]) -> str:
    return f"{parent}{SEP}{EDGE_PREFIX}{edge}={OP_SEP.join(str(o) for o in sorted(ops))}"


class RestrictedSpace:
    """A space seen through a ``SubSpace``: ``sample`` and ``mutate`` stay inside it, ``contains`` is
    both; everything else (names, strings, hashing) is the base space's. What a sub-supernet's
    sampling rule draws from."""

    def __init__(self, base: Any, sub: SubSpace) -> None:
        self.base, self.sub = base, sub

    def __getattr__(self, name: str) -> Any:
        if name in ("base", "sub"):  # not set yet (unpickling)
            raise AttributeError(name)
        return getattr(self.base, name)

    def sample(self, rng: np.random.Generator) -> tuple[int, ...]:
        return self.sub.sample(rng)

    def contains(self, arch: object) -> bool:
        return self.base.contains(arch) and self.sub.contains(arch)  # type: ignore[arg-type]

    def mutate(self, arch: Sequence[int], rng: np.random.Generator) -> tuple[int, ...]:
        """Change one edge that still has a choice to another op it allows."""
        edges = self.sub.splittable()
        if not edges:
            return tuple(arch)
        edge = edges[int(rng.integers(len(edges)))]
        others = sorted(self.sub.ops(edge) - {arch[edge]})
        child = list(arch)
        child[edge] = int(rng.choice(others))
        return tuple(child)


class SplitTree:
    """A split tree rooted at the whole space (see the module docstring)."""

    def __init__(self, num_edges: int, num_ops: int) -> None:
        self.nodes: dict[str, SplitNode] = {ROOT: SplitNode(ROOT, SubSpace(num_edges, num_ops))}
        self.children: dict[str, list[str]] = {ROOT: []}

    def split(self, node_id: str, edge: int, groups: Sequence[Iterable[int]]) -> list[SplitNode]:
        """Give leaf ``node_id`` one child per group; ``groups`` must partition the ops it allows on
        ``edge`` into at least two non-empty groups (``ValueError`` otherwise)."""
        node = self.nodes[node_id]
        if self.children[node_id]:
            raise ValueError(f"{node_id} is already split")
        groups = [frozenset(g) for g in groups]
        allowed = node.space.ops(edge)
        if len(groups) < 2 or any(not g for g in groups) or sum(len(g) for g in groups) != len(allowed) \
                or frozenset().union(*groups) != allowed:
            raise ValueError(f"{node_id}: groups {[sorted(g) for g in groups]} do not partition edge {edge}'s "
                             f"ops {sorted(allowed)} into two or more groups")
        made = [SplitNode(child_id(node_id, edge, g), node.space.restrict(edge, g), node_id, edge, tuple(sorted(g)))
                for g in groups]
        for child in made:
            self.nodes[child.id] = child
            self.children[child.id] = []
        self.children[node_id] = [c.id for c in made]
        return made

    def leaves(self) -> list[SplitNode]:
        return [n for n in self.nodes.values() if not self.children[n.id]]

    def route(self, arch: Sequence[int]) -> str:
        """The id of the leaf whose sub-space contains ``arch``."""
        node = self.nodes[ROOT]
        if not node.space.contains(arch):
            raise ValueError(f"{tuple(arch)} is not an arch of the split space")
        while self.children[node.id]:
            node = next(self.nodes[c] for c in self.children[node.id] if self.nodes[c].space.contains(arch))
        return node.id

    def depth(self, node_id: str) -> int:
        return node_id.count(SEP)

    def walk(self) -> Iterator[SplitNode]:
        """Every node, parents before children."""
        stack = [ROOT]
        while stack:
            node_id = stack.pop()
            yield self.nodes[node_id]
            stack.extend(reversed(self.children[node_id]))
