"""PNG plots of a search (matplotlib, Agg canvas; no pyplot global state, no display needed).

* ``save_progress``: best-so-far metric against the search clock and against wall time;
* ``save_pareto``: the metric against a cost (``cost_metric()`` picks it) with the non-dominated
  front highlighted;
* ``save_comparison``: best-so-far curves of several runs (``raynas compare``);
* ``save_split_tree``: a few-shot split tree, top-down (``tree_layout`` places its nodes);
* ``save_distance_heatmap``: a gradient-distance matrix between ops, a split's groups outlined.
Accuracy-like metrics are maximised, costs minimised, unless ``mode="min"`` is given.
"""
from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any, Sequence

from raynas.metrics import COST_METRICS, COST_S, MAX
from raynas.runtime.records import CandidateRecord

PROGRESS_PNG = "plots/progress.png"
PARETO_PNG = "plots/pareto.png"
CLOCK_COST = COST_S  # the cost axis when no cost metric was recorded
DPI = 110
FRONT_COLOR, CLOUD_COLOR = "tab:red", "tab:blue"


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | Path, **savefig_kw) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, **savefig_kw)
    return path


def save_progress(records: Sequence[CandidateRecord], metric: str, path: str | Path,
                  mode: str = MAX, title: str = "") -> Path:
    """Two panels: the best ``metric`` so far vs the search clock (``sim_end_s``) and vs wall time
    (``wall_s``), each a running best over the candidates sorted by that time."""
    kept = [r for r in records if metric in r.metrics]
    pick = min if mode == "min" else max
    fig = _figure(10, 3.6)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, attr, label in ((axes[0], "sim_end_s", "search clock (s)"), (axes[1], "wall_s", "wall time (s)")):
        order = sorted(kept, key=lambda r: getattr(r, attr))
        ax.step([getattr(r, attr) for r in order], running_best([r.metrics[metric] for r in order], pick),
                where="post", color=CLOUD_COLOR)
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"best {metric} so far")
    fig.suptitle(title or f"best {metric} so far ({len(kept)} candidates)")
    return _save(fig, path)


def running_best(values: Sequence[float], pick=max) -> list[float]:
    """``out[i] = pick(values[:i + 1])``."""
    out: list[float] = []
    for v in values:
        out.append(v if not out else pick(out[-1], v))
    return out


def cost_metric(records: Sequence[CandidateRecord]) -> str:
    """The first of ``COST_METRICS`` every candidate has, else ``cost_s`` (the clock cost)."""
    for name in COST_METRICS:
        if records and all(name in r.metrics for r in records):
            return name
    return CLOCK_COST


def _cost(record: CandidateRecord, name: str) -> float:
    return record.cost_s if name == CLOCK_COST else record.metrics[name]


def pareto_front(points: Sequence[tuple[float, float]], maximise: bool = True) -> list[int]:
    """Indices of the non-dominated ``(score, cost)`` points: none has a better-or-equal score at a
    lower-or-equal cost with one strictly better. Sorted by cost; duplicates keep their first index."""
    sign = 1.0 if maximise else -1.0
    order = sorted(range(len(points)), key=lambda i: (points[i][1], -sign * points[i][0], i))
    front, best = [], None
    for i in order:
        score = sign * points[i][0]
        if best is None or score > best:
            front.append(i)
            best = score
    return front


def save_pareto(records: Sequence[CandidateRecord], metric: str, path: str | Path,
                mode: str = MAX) -> Path:
    """Scatter of ``metric`` vs ``cost_metric(records)``; the front drawn as a red staircase."""
    cost = cost_metric(records)
    kept = [r for r in records if metric in r.metrics]
    pts = [(r.metrics[metric], _cost(r, cost)) for r in kept]
    front = pareto_front(pts, maximise=mode != "min")
    fig = _figure(6.4, 4.4)
    ax = fig.subplots()
    ax.scatter([p[1] for p in pts], [p[0] for p in pts], s=12, alpha=0.45, color=CLOUD_COLOR,
               label=f"candidates ({len(pts)})")
    fx, fy = [pts[i][1] for i in front], [pts[i][0] for i in front]
    ax.step(fx, fy, where="post", color=FRONT_COLOR)
    ax.scatter(fx, fy, s=30, color=FRONT_COLOR, zorder=3, label=f"non-dominated ({len(front)})")
    ax.set_xlabel(cost)
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(f"{metric} vs {cost}")
    return _save(fig, path)


def save_comparison(curves: dict[str, tuple[list[int], list[float]]], metric: str,
                    path: str | Path, title: str = "") -> Path:
    """One best-so-far curve per run: ``curves[label] = (candidate indices, values)``."""
    fig = _figure(7.5, 4.4)
    ax = fig.subplots()
    for label, (steps, values) in curves.items():
        ax.step(steps, values, where="post", label=label)
    ax.set_xlabel("candidates evaluated")
    ax.set_ylabel(f"best {metric} so far")
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize="small", loc="lower right")
    ax.set_title(title or f"best {metric} so far, {len(curves)} runs")
    return _save(fig, path)


# --- few-shot split tree -------------------------------------------------------------------------

LEAF_COLOR, NODE_COLOR, EDGE_COLOR = "#cde8c5", "white", "0.45"
ROTATE_LEAVES_OVER = 8  # more leaves than this: leaf labels turn 90 degrees and the font shrinks


def tree_layout(nodes: Sequence[dict]) -> dict[str, tuple[float, float]]:
    """``{id: (x, y)}`` for a split tree given as ``nodes`` (dicts with ``"id"`` and ``"parent"``).

    Pure: leaves (nodes no other node names as parent) sit at x = 0, 1, 2, ... in depth-first order,
    children taken in list order; a parent sits at the mean x of its children; y = -depth (root at 0).
    Raises ``ValueError`` naming the node for a duplicate id, a parent that is not a node id, a second
    root (or none), or a node not reachable from the root."""
    ids: dict[str, dict] = {}
    for node in nodes:
        if node["id"] in ids:
            raise ValueError(f"split tree: node {node['id']!r} appears twice")
        ids[node["id"]] = node
    roots = [n["id"] for n in nodes if n.get("parent") is None]
    if len(roots) != 1:
        raise ValueError(f"split tree: needs exactly one root (parent None), got {roots}")
    children: dict[str, list[str]] = {i: [] for i in ids}
    for node in nodes:
        parent = node.get("parent")
        if parent is not None:
            if parent not in ids:
                raise ValueError(f"split tree: node {node['id']!r} has unknown parent {parent!r}")
            children[parent].append(node["id"])
    pos: dict[str, tuple[float, float]] = {}
    leaves_placed = [0]

    def place(node_id: str, depth: int) -> float:
        kids = children[node_id]
        if kids:
            x = sum(place(k, depth + 1) for k in kids) / len(kids)
        else:
            x, leaves_placed[0] = float(leaves_placed[0]), leaves_placed[0] + 1
        pos[node_id] = (x, -float(depth))
        return x

    place(roots[0], 0)
    lost = [i for i in ids if i not in pos]
    if lost:
        raise ValueError(f"split tree: node {lost[0]!r} is not reachable from root {roots[0]!r}")
    return pos


def split_label(node: dict, op_names: Sequence[str] | None = None, wrap: int = 24) -> str:
    """A node's label lines: ``root`` or ``e0 ∈ {conv_3x3, avg_pool}`` (op indices without
    ``op_names``), then ``ep 0–10`` when ``epochs`` is given and ``score 0.912`` when ``score`` is."""
    if node.get("parent") is None:
        lines = ["root"]
    else:
        ops = node.get("ops") or []
        if op_names is not None and any(not 0 <= o < len(op_names) for o in ops):
            raise ValueError(f"split tree: node {node['id']!r} keeps ops {ops}, "
                             f"outside op_names (0..{len(op_names) - 1})")
        names = [op_names[o] if op_names is not None else str(o) for o in ops]
        lines = textwrap.wrap(f"e{node.get('edge')} ∈ {{{', '.join(names)}}}", wrap) or [""]
    epochs = node.get("epochs")
    if epochs:
        lines.append(f"ep {epochs[0]}–{epochs[1]}")
    if node.get("score") is not None:
        lines.append(f"score {node['score']:.4g}")
    return "\n".join(lines)


def save_split_tree(nodes: Sequence[dict], path: str | Path, op_names: Sequence[str] | None = None,
                    title: str | None = None) -> Path:
    """PNG of a few-shot split tree, root at the top, one row per depth, a line from each parent to
    each child. ``nodes``: JSON dicts in walk order, ``{"id", "parent", "edge", "ops", "leaf",
    "epochs": [start, stop], "score"}`` (``edge``/``ops`` None on the root, ``score`` optional).
    Each node is a box labelled by ``split_label``; boxes of ``leaf`` nodes are filled green, others
    white. Over ``ROTATE_LEAVES_OVER`` leaves, leaf boxes hang below their point rotated 90 degrees
    and the font is smaller. Layout from ``tree_layout`` (its ``ValueError`` on a bad tree)."""
    pos = tree_layout(nodes)
    parents = {n.get("parent") for n in nodes}
    n_leaves = sum(1 for n in nodes if n["id"] not in parents)
    depth = int(-min(y for _, y in pos.values()))
    rotate = n_leaves > ROTATE_LEAVES_OVER
    font = 9 if n_leaves <= 5 else 8 if not rotate else 7
    width = min(30.0, max(4.0, n_leaves * (0.5 if rotate else 1.7) + 0.8))
    fig = _figure(width, 1.3 * depth + 1.0 + (1.2 if rotate else 0.0))
    ax = fig.subplots()
    ax.set_axis_off()
    ax.set_xlim(-0.5, n_leaves - 0.5)
    ax.set_ylim(-depth - 0.4, 0.4)
    for node in nodes:
        if node.get("parent") is not None:
            (x0, y0), (x1, y1) = pos[node["parent"]], pos[node["id"]]
            ax.plot([x0, x1], [y0, y1], color=EDGE_COLOR, lw=1.0, zorder=1)
    for node in nodes:
        x, y = pos[node["id"]]
        hang = rotate and node["id"] not in parents
        ax.text(x, y, split_label(node, op_names), ha="center", va="top" if hang else "center",
                rotation=90 if hang else 0, fontsize=font, zorder=2,
                bbox=dict(boxstyle="round,pad=0.3", ec="0.3",
                          fc=LEAF_COLOR if node.get("leaf") else NODE_COLOR))
    fig.suptitle(title or f"few-shot split tree ({_count(len(nodes), 'node')}, {_count(n_leaves, 'lea', 'f', 'ves')})")
    return _save(fig, path, bbox_inches="tight", pad_inches=0.15)


def _count(n: int, stem: str, one: str = "", many: str = "s") -> str:
    return f"{n} {stem}{one if n == 1 else many}"


# --- gradient-distance heatmap -------------------------------------------------------------------

GROUP_COLOR = "tab:red"


def group_order(groups: Sequence[Sequence[int]], n: int) -> list[int]:
    """The op order that makes ``groups`` contiguous: groups in the given order, indices within a
    group in the given order. ``ValueError`` unless ``groups`` is a partition of ``range(n)``."""
    order = [int(i) for g in groups for i in g]
    if sorted(order) != list(range(n)) or any(len(g) == 0 for g in groups):
        raise ValueError(f"groups {[list(g) for g in groups]} are not a partition of the {n} ops "
                         f"(each index 0..{n - 1} exactly once, no empty group)")
    return order


def save_distance_heatmap(dist: Any, ops: Sequence[str], path: str | Path, title: str | None = None,
                          groups: Sequence[Sequence[int]] | None = None) -> Path:
    """PNG of a square gradient-distance matrix (``1 - cosine``, in [0, 2]; list of lists or array):
    one cell per op pair, ``ops`` labelling both axes, each cell's value written in it, a colorbar
    (viridis, 0 to ``max(1, largest value)``; non-finite cells blank, written ``n/a``).
    With ``groups`` (a partition of ``range(len(ops))``, see ``group_order``) rows and columns are
    REORDERED so each group is contiguous, and each group's within-group block is outlined in red.
    ``ValueError`` when ``dist`` is not ``len(ops)`` x ``len(ops)`` or ``groups`` is no partition."""
    import numpy as np

    mat = np.asarray(dist, dtype=float)
    n = len(ops)
    if mat.shape != (n, n):
        raise ValueError(f"distance matrix of shape {mat.shape} does not match {n} ops")
    order = group_order(groups, n) if groups is not None else list(range(n))
    mat = mat[np.ix_(order, order)]
    labels = [str(ops[i]) for i in order]
    finite = mat[np.isfinite(mat)]
    vmax = max(1.0, float(finite.max()) if finite.size else 1.0)
    side = min(14.0, max(3.6, 0.75 * n + 2.0))
    fig = _figure(side + 1.0, side)
    ax = fig.subplots()
    image = ax.imshow(np.ma.masked_invalid(mat), cmap="viridis", vmin=0.0, vmax=vmax)
    fig.colorbar(image, ax=ax, shrink=0.8, label="gradient distance (1 - cosine)")
    ax.set_xticks(range(n), labels, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(n), labels)
    font = 9 if n <= 6 else max(5, math.floor(60 / n))
    for r in range(n):
        for c in range(n):
            v = mat[r, c]
            dark = bool(np.isfinite(v)) and v / vmax < 0.5
            ax.text(c, r, f"{v:.2f}" if np.isfinite(v) else "n/a", ha="center", va="center",
                    fontsize=font, color="white" if dark else "black")
    start = 0
    for g in groups or []:
        ax.add_patch(_rect(start - 0.5, len(g)))
        start += len(g)
    ax.set_title(title or f"gradient distance between {n} ops"
                 + (f", {len(groups)} groups" if groups is not None else ""))
    return _save(fig, path)


def _rect(corner: float, size: int):
    from matplotlib.patches import Rectangle

    return Rectangle((corner, corner), size, size, fill=False, ec=GROUP_COLOR, lw=2.5, zorder=3)
