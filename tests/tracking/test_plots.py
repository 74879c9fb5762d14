"""Plots: the Pareto front against brute force, and PNGs with real content."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from raynas.runtime.records import CandidateRecord
from raynas.tracking import plots
from tests.tracking.browser import ink_stats


def _brute_front(points, maximise=True):
    s = 1 if maximise else -1
    return sorted(i for i, (a, c) in enumerate(points)
                  if not any((s * b >= s * a and d <= c) and (s * b > s * a or d < c) for b, d in points))


@pytest.mark.parametrize("maximise", [True, False])
def test_pareto_front_matches_brute_force(maximise):
    rng = np.random.default_rng(0)
    for _ in range(50):
        pts = [(float(a), float(c)) for a, c in rng.random((40, 2)).round(6)]
        assert sorted(plots.pareto_front(pts, maximise)) == _brute_front(pts, maximise)


def test_pareto_front_keeps_one_of_equal_points_and_sorts_by_cost():
    pts = [(90.0, 10.0), (80.0, 5.0), (90.0, 10.0), (70.0, 20.0), (95.0, 30.0)]
    assert plots.pareto_front(pts) == [1, 0, 4]


def _record(i, acc, flops, **kw):
    base = dict(index=i, trial_id=f"t{i}", candidate_id=f"t{i}/0", arch=f"a{i}", canonical=f"c{i}",
                parent=None, variation=None, generation=0, metrics={"valid_acc": acc, "flops_m": flops},
                hidden={}, cost_s=100.0, sim_start_s=100.0 * i, sim_end_s=100.0 * (i + 1),
                wall_s=0.01 * i, worker=0, evaluator="e")
    return CandidateRecord(**{**base, **kw})


def test_cost_metric_prefers_latency_then_flops_then_clock_cost():
    recs = [_record(0, 80, 10), _record(1, 81, 12)]
    assert plots.cost_metric(recs) == "flops_m"
    with_latency = [dataclasses.replace(r, metrics={**r.metrics, "latency_ms": 1.0}) for r in recs]
    assert plots.cost_metric(with_latency) == "latency_ms"
    assert plots.cost_metric([dataclasses.replace(r, metrics={"valid_acc": 1.0}) for r in recs]) == "cost_s"


def test_pngs_have_content(tmp_path):
    rng = np.random.default_rng(1)
    recs = [_record(i, float(rng.uniform(50, 90)), float(rng.uniform(5, 150))) for i in range(60)]
    made = [plots.save_progress(recs, "valid_acc", tmp_path / "p" / "progress.png"),
            plots.save_pareto(recs, "valid_acc", tmp_path / "pareto.png"),
            plots.save_comparison({"a": ([0, 1, 2], [1.0, 2.0, 2.0]), "b": ([0, 1], [0.5, 3.0])},
                                  "valid_acc", tmp_path / "cmp.png")]
    for png in made:
        colors, ink = ink_stats(png)
        assert colors > 50 and ink > 0.03, png


def test_running_best():
    assert plots.running_best([3, 1, 4, 1, 5]) == [3, 3, 4, 4, 5]
    assert plots.running_best([3, 1, 4], min) == [3, 1, 1]
