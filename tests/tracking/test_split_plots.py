"""Few-shot split pictures: the tree layout (pure), tree and distance-heatmap PNGs with real content."""
from __future__ import annotations

import numpy as np
import pytest
from matplotlib import image as mpimg

from raynas.tracking import plots

OPS = ["none", "skip_connect", "conv_1x1", "conv_3x3", "avg_pool_3x3"]


def _node(node_id, parent=None, edge=None, ops=None, leaf=False, epochs=(0, 10), score=None):
    return {"id": node_id, "parent": parent, "edge": edge, "ops": ops, "leaf": leaf,
            "epochs": list(epochs), "score": score}


def _root_only():
    return [_node("root", leaf=True, score=0.71)]


def _depth1():
    """Root split on edge 0 into one child per op (5 leaves)."""
    return [_node("root")] + [_node(f"root/e0={o}", "root", 0, [o], True, (10, 20), 0.6 + 0.05 * o)
                              for o in range(5)]


def _depth2(first: list[list[int]], second: list[list[int]]):
    """Root split on edge 0 by ``first``, each child split on edge 2 by ``second`` (walk order)."""
    nodes = [_node("root", epochs=(0, 10))]
    for g in first:
        child = f"root/e0={','.join(map(str, g))}"
        nodes.append(_node(child, "root", 0, g, False, (10, 20), 0.5))
        for h in second:
            nodes.append(_node(f"{child}/e2={','.join(map(str, h))}", child, 2, h, True, (20, 30),
                               None if len(h) > 1 else 0.7 + 0.01 * h[0]))
    return nodes


def _assert_png(path, min_side=150):
    img = mpimg.imread(path)  # fails on anything that is not a readable image
    assert path.suffix == ".png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    h, w = img.shape[:2]
    assert min(h, w) >= min_side and max(h, w) <= 4000, (path, img.shape)
    rgb = img[..., :3]
    assert float(rgb.std()) > 0.05, path  # not a blank canvas
    return img


# --- layout --------------------------------------------------------------------------------------

def _check_layout(nodes, pos):
    assert set(pos) == {n["id"] for n in nodes}
    children = {n["id"]: [m["id"] for m in nodes if m["parent"] == n["id"]] for n in nodes}
    leaves = [i for i, kids in children.items() if not kids]
    assert sorted(pos[i][0] for i in leaves) == [float(k) for k in range(len(leaves))]
    depth = {}
    for n in nodes:  # walk order: a parent comes before its children
        depth[n["id"]] = 0 if n["parent"] is None else depth[n["parent"]] + 1
        assert pos[n["id"]][1] == -depth[n["id"]]
    for i, kids in children.items():
        if kids:
            assert pos[i][0] == pytest.approx(np.mean([pos[k][0] for k in kids]))
            assert pos[i][0] == pytest.approx((pos[kids[0]][0] + pos[kids[-1]][0]) / 2)


def test_layout_root_only():
    assert plots.tree_layout(_root_only()) == {"root": (0.0, 0.0)}


def test_layout_depth1_parent_centered_over_five_leaves():
    nodes = _depth1()
    pos = plots.tree_layout(nodes)
    _check_layout(nodes, pos)
    assert [pos[f"root/e0={o}"] for o in range(5)] == [(float(o), -1.0) for o in range(5)]
    assert pos["root"] == (2.0, 0.0)


@pytest.mark.parametrize("first,second", [([[0, 1], [2, 3, 4]], [[0], [1, 2, 3, 4]]),
                                          ([[o] for o in range(5)], [[o] for o in range(5)])])
def test_layout_depth2(first, second):
    nodes = _depth2(first, second)
    pos = plots.tree_layout(nodes)
    _check_layout(nodes, pos)
    n_leaves = len(first) * len(second)
    assert pos["root"] == ((n_leaves - 1) / 2, 0.0)
    # depth-first: the first child's leaves are left of the second child's
    assert pos[f"root/e0={','.join(map(str, first[0]))}"][0] < pos[f"root/e0={','.join(map(str, first[1]))}"][0]


def test_layout_unbalanced_tree_keeps_leaves_distinct():
    nodes = [_node("root"), _node("root/e0=0", "root", 0, [0], True),
             _node("root/e0=1,2", "root", 0, [1, 2]),
             _node("root/e0=1,2/e1=0", "root/e0=1,2", 1, [0], True),
             _node("root/e0=1,2/e1=1", "root/e0=1,2", 1, [1], True)]
    pos = plots.tree_layout(nodes)
    _check_layout(nodes, pos)
    assert pos["root/e0=0"] == (0.0, -1.0) and pos["root/e0=1,2"] == (1.5, -1.0)
    assert pos["root"] == (0.75, 0.0)


def test_layout_rejects_unknown_parent_naming_the_node():
    nodes = _depth1() + [_node("root/e9=1/e1=0", "root/e9=1", 1, [0], True)]
    with pytest.raises(ValueError, match=r"root/e9=1/e1=0.*unknown parent 'root/e9=1'"):
        plots.tree_layout(nodes)
    with pytest.raises(ValueError, match="root/e9=1/e1=0"):
        plots.save_split_tree(nodes, "never.png")


def test_layout_rejects_two_roots_duplicates_and_cycles():
    with pytest.raises(ValueError, match="exactly one root"):
        plots.tree_layout([_node("root"), _node("other")])
    with pytest.raises(ValueError, match="exactly one root"):
        plots.tree_layout([])
    with pytest.raises(ValueError, match="'root/e0=1' appears twice"):
        plots.tree_layout([_node("root"), _node("root/e0=1", "root", 0, [1]), _node("root/e0=1", "root", 0, [1])])
    with pytest.raises(ValueError, match="'a' is not reachable"):
        plots.tree_layout([_node("root"), _node("a", "b"), _node("b", "a")])


# --- labels and PNGs -----------------------------------------------------------------------------

def test_split_label():
    assert plots.split_label(_node("root", epochs=(0, 10))) == "root\nep 0–10"
    node = _node("root/e0=1,3", "root", 0, [1, 3], True, (10, 20), 0.91234)
    assert plots.split_label(node, OPS) == "e0 ∈ {skip_connect,\nconv_3x3}\nep 10–20\nscore 0.9123"
    assert plots.split_label(node, OPS, wrap=40).startswith("e0 ∈ {skip_connect, conv_3x3}\n")
    assert plots.split_label({**node, "epochs": None, "score": None}) == "e0 ∈ {1, 3}"
    with pytest.raises(ValueError, match="root/e0=1,3"):
        plots.split_label({**node, "ops": [7]}, OPS)


@pytest.mark.parametrize("name,nodes", [
    ("depth0", _root_only()),
    ("depth1", _depth1()),
    ("depth2_4", _depth2([[0, 1], [2, 3, 4]], [[0, 1, 2], [3, 4]])),
    ("depth2_25", _depth2([[o] for o in range(5)], [[o] for o in range(5)])),
])
@pytest.mark.parametrize("names", [OPS, None])
def test_split_tree_pngs(tmp_path, name, nodes, names):
    out = plots.save_split_tree(nodes, tmp_path / "sub" / f"{name}.png", op_names=names)
    assert out == tmp_path / "sub" / f"{name}.png"
    img = _assert_png(out, min_side=100)
    if name == "depth2_25":  # wide enough for 25 leaf boxes side by side
        assert img.shape[1] > 2 * img.shape[0] / 3 and img.shape[1] >= 1000


def test_split_tree_is_deterministic(tmp_path):
    nodes = _depth2([[0, 1], [2, 3, 4]], [[0], [1, 2, 3, 4]])
    a = plots.save_split_tree(nodes, tmp_path / "a.png", OPS, title="t")
    b = plots.save_split_tree(nodes, tmp_path / "b.png", OPS, title="t")
    assert np.array_equal(mpimg.imread(a), mpimg.imread(b))


def _dist(n, seed=0):
    g = np.random.default_rng(seed).normal(size=(n, 16))
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    return np.clip(1.0 - g @ g.T, 0.0, 2.0)


def test_distance_heatmaps(tmp_path):
    five = plots.save_distance_heatmap(_dist(5), OPS, tmp_path / "h5.png", groups=[[0, 2], [1, 3, 4]])
    two = plots.save_distance_heatmap(_dist(2).tolist(), OPS[:2], tmp_path / "h2.png", title="two ops")
    for png in (five, two):
        img = _assert_png(png)
        assert 0.5 < img.shape[1] / img.shape[0] < 2.5


def test_distance_heatmap_outlines_groups(tmp_path):
    dist = _dist(5, seed=3)
    plain = mpimg.imread(plots.save_distance_heatmap(dist, OPS, tmp_path / "plain.png"))
    grouped = mpimg.imread(plots.save_distance_heatmap(dist, OPS, tmp_path / "g.png",
                                                       groups=[[4], [0, 1, 2, 3]]))
    red = (grouped[..., 0] > 0.7) & (grouped[..., 1] < 0.3) & (grouped[..., 2] < 0.3)
    assert red.sum() > 200 and not np.array_equal(plain, grouped)


def test_group_order_and_bad_heatmap_input(tmp_path):
    assert plots.group_order([[3, 1], [0], [2, 4]], 5) == [3, 1, 0, 2, 4]
    for bad in ([[0, 1], [1, 2, 3, 4]], [[0, 1], [2, 3]], [[0, 1, 2, 3, 4], []], [[0, 1, 2, 3, 5]]):
        with pytest.raises(ValueError, match="not a partition"):
            plots.group_order(bad, 5)
    with pytest.raises(ValueError, match="does not match 5 ops"):
        plots.save_distance_heatmap(_dist(4), OPS, tmp_path / "x.png")
    with pytest.raises(ValueError, match="not a partition"):
        plots.save_distance_heatmap(_dist(5), OPS, tmp_path / "x.png", groups=[[0, 1]])
    assert not (tmp_path / "x.png").exists()


def test_distance_heatmap_handles_nan_cells(tmp_path):
    dist = _dist(3)
    dist[0, 1] = dist[1, 0] = np.nan
    _assert_png(plots.save_distance_heatmap(dist, OPS[:3], tmp_path / "nan.png"))
