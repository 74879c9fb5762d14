"""Serving a few-shot split tree: one ``ServerPool`` per sub-supernet (leaf), and routing by arch.

``SplitServing`` is what a trained split tree serves from (``raynas.serving.sources.SplitWeights``
produces it): the tree, each leaf's weights file, and the tree's record (nodes, splits, curves) for
tracking. ``SplitPools`` is the client searches use — it pickles (the tree and the pools' handles),
so Tune's trial workers reach the same pools.

Contract of ``SplitPools.evaluate(items)`` (``(arch string, canonical hash)`` pairs, as
``ServerPool.evaluate``): every arch goes to the one leaf whose sub-space contains it
(``SplitTree.route``); the leaf's pool scores it with that leaf's weights, so the reply's ``version``
is the leaf's weights version; its evaluation cache key is ``(<leaf id>#<canonical>, version)``, so the
sub-supernet is part of the key even when two leaves happen to hold the same weights; each reply also
carries ``sub_supernet`` (the leaf id). Requests to different leaves run concurrently.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import ray

from raynas.serving.pool import ServerPool
from raynas.serving.router import PoolConfig
from raynas.serving.spec import ModelSpec
from raynas.space.splits import SplitTree

SUB_SUPERNET = "sub_supernet"
KEY_SEP = "#"


@dataclasses.dataclass(frozen=True)
class SplitServing:
    """A trained split tree: ``leaves`` maps each leaf id to its weights file (``.npz``)."""

    tree: SplitTree
    leaves: dict[str, str]
    record: dict[str, Any]  # JSON-able: method, nodes, splits, curves (for tracking)

    def prepare(self) -> "SplitServing":
        return self


class SplitPools:
    """One pool per leaf of ``tree`` and the router between them (see the module docstring)."""

    def __init__(self, tree: SplitTree, pools: dict[str, ServerPool], parse: Callable[[str], Sequence[int]]) -> None:
        missing = sorted({leaf.id for leaf in tree.leaves()} - set(pools))
        if missing:
            raise ValueError(f"no pool for sub-supernets {missing}")
        self.tree, self.pools, self.parse = tree, pools, parse

    @classmethod
    def create(cls, serving: SplitServing, spec: ModelSpec, config: PoolConfig, name: str,
               parse: Callable[[str], Sequence[int]]) -> "SplitPools":
        """A pool per leaf (named ``<name>-<i>``, leaf order), each serving that leaf's weights file, read
        here and shipped through the object store (``sources.shipped``)."""
        from raynas.serving.sources import StoredWeights, shipped

        pools = {leaf.id: ServerPool.create(spec, config, factory=shipped(StoredWeights(serving.leaves[leaf.id])),
                                            name=f"{name}-{i}")
                 for i, leaf in enumerate(serving.tree.leaves())}
        return cls(serving.tree, pools, parse)

    def route(self, arch_str: str) -> str:
        return self.tree.route(self.parse(arch_str))

    def ready(self, timeout: float | None = None) -> dict[str, str]:
        """Wait until every leaf's pool serves; returns leaf id → weights version."""
        refs = {leaf: pool.router.ready.remote() for leaf, pool in self.pools.items()}
        return dict(zip(refs, ray.get(list(refs.values()), timeout=timeout)))

    def evaluate(self, items: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        by_leaf: dict[str, list[int]] = {}
        for i, (arch, _) in enumerate(items):
            by_leaf.setdefault(self.route(arch), []).append(i)
        refs = {leaf: self.pools[leaf].evaluate_async([(items[i][0], f"{leaf}{KEY_SEP}{items[i][1]}") for i in idx])
                for leaf, idx in by_leaf.items()}
        out: list[Any] = [None] * len(items)
        for leaf, replies in zip(refs, ray.get(list(refs.values()))):
            for i, reply in zip(by_leaf[leaf], replies):
                out[i] = {**reply, SUB_SUPERNET: leaf}
        return out

    def versions(self) -> dict[str, str]:
        return {leaf: pool.version() for leaf, pool in self.pools.items()}

    def weights_of(self, arch_str: str) -> dict:
        """The weights of the sub-supernet that serves ``arch_str``."""
        return self.pools[self.route(arch_str)].weights()

    def publish(self, arrays: dict) -> str:
        raise NotImplementedError("a few-shot split search serves one set of weights per sub-supernet; "
                                  "publish to one of SplitPools.pools[<leaf id>]")

    def stats(self) -> dict[str, Any]:
        return {leaf: pool.stats() for leaf, pool in self.pools.items()}

    def shutdown(self) -> None:
        for pool in self.pools.values():
            pool.shutdown()

    def __repr__(self) -> str:
        return f"SplitPools({len(self.pools)} sub-supernets)"
