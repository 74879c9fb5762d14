"""The in-process simulator backend: clock semantics, budgets, batching, virtual workers."""
from __future__ import annotations

import pytest

from raynas.runtime import build_search
from tests.runtime.helpers import Collector, recipe


def run(nb201_path, *overrides):
    col = Collector()
    summary = build_search(recipe(nb201_path, *overrides), [col]).run()
    return col, summary


def test_one_worker_runs_back_to_back_within_budget(nb201_path):
    col, summary = run(nb201_path, "budget.sim_seconds=12000")
    recs = col.records
    assert 85 <= len(recs) <= 115 and summary.num_candidates == len(recs)
    assert recs[0].sim_start_s == 0
    for prev, cur in zip(recs, recs[1:]):
        assert cur.sim_start_s == pytest.approx(prev.sim_end_s)
    assert recs[-1].sim_end_s <= 12000 and summary.sim_time_s == recs[-1].sim_end_s
    assert [r.index for r in recs] == list(range(len(recs)))
    assert summary.best.metrics["valid_acc"] == max(r.metrics["valid_acc"] for r in recs)


def test_max_candidates_budget(nb201_path):
    col, summary = run(nb201_path, "budget.sim_seconds=null", "budget.max_candidates=37")
    assert len(col.records) == summary.num_candidates == 37 and summary.num_over_budget == 0


def test_virtual_workers_share_the_clock(nb201_path):
    col, _ = run(nb201_path, "backend.workers=4", "budget.sim_seconds=12000")
    recs = col.records
    assert 340 <= len(recs) <= 460  # four workers, ~4x the evaluations
    assert {r.worker for r in recs} == {0, 1, 2, 3}
    ends = [r.sim_end_s for r in recs]
    assert ends == sorted(ends)  # the simulator delivers completions in clock order
    for w in range(4):
        mine = [r for r in recs if r.worker == w]
        for prev, cur in zip(mine, mine[1:]):
            assert cur.sim_start_s == pytest.approx(prev.sim_end_s)


def test_batched_trials_match_unbatched_with_one_worker(nb201_path):
    """Batching changes when the strategy hears results, so sequences differ; the clock and the
    budget accounting must not."""
    col, summary = run(nb201_path, "backend.candidates_per_trial=5", "budget.sim_seconds=6000")
    recs = col.records
    assert len({r.trial_id for r in recs}) * 5 >= len(recs) > 40
    for prev, cur in zip(recs, recs[1:]):
        assert cur.sim_start_s == pytest.approx(prev.sim_end_s)
    assert recs[-1].sim_end_s <= 6000


def test_lineage_is_recorded(nb201_path):
    col, _ = run(nb201_path)
    children = [r for r in col.records if r.parent is not None]
    assert children and all(r.variation and r.generation >= 1 for r in children)
    assert all(r.canonical and r.evaluator == "tabular@nb201-v2" for r in col.records)
    assert "test_acc" in col.records[0].hidden and "test_acc" not in col.records[0].metrics
