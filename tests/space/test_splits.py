"""Split trees: children's sub-spaces partition the parent's, every arch routes to exactly one leaf,
bad splits are refused (issue 12, item 9)."""
from __future__ import annotations

import numpy as np
import pytest

from raynas.space.nb201 import EDGES, OPS, NB201Space
from raynas.space.splits import ROOT, SplitTree

SPACE = NB201Space()
ALL = list(SPACE.enumerate())


def tree() -> SplitTree:
    t = SplitTree(len(EDGES), len(OPS))
    t.split(ROOT, 0, [[o] for o in range(len(OPS))])  # exhaustive on edge 1<-0, as Few-Shot NAS does
    t.split("root/e0=3", 3, [[0, 1], [2, 3, 4]])  # a GM-style 2|3 cut below one child
    return t


def test_children_partition_the_parent():
    t = tree()
    for node in t.walk():
        kids = [t.nodes[c] for c in t.children[node.id]]
        if not kids:
            continue
        inside = [a for a in ALL if node.space.contains(a)]
        assert len(inside) == node.space.size()
        assert all(sum(k.space.contains(a) for k in kids) == 1 for a in inside)
        assert not any(k.space.contains(a) for k in kids for a in ALL if not node.space.contains(a))
        assert sum(k.space.size() for k in kids) == node.space.size()


def test_every_arch_routes_to_exactly_one_leaf_that_contains_it():
    t = tree()
    leaves = t.leaves()
    assert len(leaves) == 6 and {n.id for n in leaves} >= {"root/e0=3/e3=0.1", "root/e0=3/e3=2.3.4", "root/e0=0"}
    counts = {}
    for arch in ALL:
        leaf = t.route(arch)
        assert t.nodes[leaf].space.contains(arch)
        assert sum(n.space.contains(arch) for n in leaves) == 1
        counts[leaf] = counts.get(leaf, 0) + 1
    assert sum(counts.values()) == len(ALL) and counts["root/e0=3/e3=0.1"] == 2 * 5 ** 4


def test_sampling_stays_in_the_sub_space():
    t = tree()
    rng = np.random.default_rng(0)
    node = t.nodes["root/e0=3/e3=2.3.4"]
    archs = [node.space.sample(rng) for _ in range(200)]
    assert all(node.space.contains(a) and t.route(a) == node.id for a in archs)
    assert {a[3] for a in archs} == {2, 3, 4} and {a[0] for a in archs} == {3}


@pytest.mark.parametrize("groups", [[[0, 1]], [[0, 1], [1, 2, 3, 4]], [[0], [1, 2, 3]], [[0, 1, 2, 3, 4], []]])
def test_groups_that_do_not_partition_the_edge_are_refused(groups):
    t = SplitTree(len(EDGES), len(OPS))
    with pytest.raises(ValueError, match="do not partition"):
        t.split(ROOT, 2, groups)


def test_a_split_node_cannot_be_split_again_and_outsiders_do_not_route():
    t = tree()
    with pytest.raises(ValueError, match="already split"):
        t.split(ROOT, 1, [[0], [1, 2, 3, 4]])
    with pytest.raises(ValueError, match="not a non-empty subset"):
        t.nodes["root/e0=3"].space.restrict(0, [1])
    with pytest.raises(ValueError, match="not an arch"):
        t.route((0, 0, 0))
