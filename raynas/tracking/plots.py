"""PNG plots of a search (matplotlib, Agg canvas; no pyplot global state, no display needed).

* ``save_progress``: best-so-far metric against the search clock and against wall time;
* ``save_pareto``: the metric against a cost (``cost_metric()`` picks it) with the non-dominated
  front highlighted;
* ``save_comparison``: best-so-far curves of several runs (``raynas compare``).
Accuracy-like metrics are maximised, costs minimised, unless ``mode="min"`` is given.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

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


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
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
