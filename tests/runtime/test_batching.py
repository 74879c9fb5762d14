"""``backend.candidates_per_trial``: fixed and ``auto`` batching (``raynas.runtime.batching``), alone, in
the driver, and on a real local Ray Tune."""
from __future__ import annotations

import math

import pytest

from raynas.errors import RecipeError
from raynas.runtime import build_search
from raynas.runtime.batching import MAX_AUTO, TAIL_SHARE, TARGET_TRIAL_S, Batching
from tests.runtime.helpers import Collector, recipe


def test_fixed_is_the_number_and_never_more_than_the_budget_leaves():
    b = Batching.of(5)
    assert b.size(workers=2) == 5 and b.size(workers=2, left=3) == 3
    b.observe(5, wall_s=50.0, cost_s=10.0)  # measurements do not change a fixed size
    assert b.size(workers=2, left=100, clock_left_s=1.0) == 5


def test_auto_starts_at_one_then_fills_the_target_trial_time():
    b = Batching.of("auto")
    assert b.size(workers=2, left=10_000) == 1  # nothing measured yet
    b.observe(1, wall_s=0.1, cost_s=100.0)
    assert b.size(workers=2, left=10_000) == math.ceil(TARGET_TRIAL_S / 0.1)
    b.observe(4, wall_s=4 * 1.0, cost_s=400.0)  # slower candidates: the mean is now 0.82 s
    assert b.size(workers=2, left=10_000) == math.ceil(TARGET_TRIAL_S / (4.1 / 5))
    assert b.target_s(workers=64) > TARGET_TRIAL_S  # many workers: longer trials, the driver is one thread


def test_auto_never_waits_on_unreported_times_and_caps_instant_evaluations():
    b = Batching.of("auto")
    b.observe(3, wall_s=None, cost_s=30.0)  # a result without its wall time teaches nothing
    assert b.measured == 0 and b.size(workers=1) == 1
    b.observe(10, wall_s=0.0, cost_s=1.0)
    assert b.size(workers=1) == MAX_AUTO


def test_auto_shrinks_at_the_end_so_workers_finish_together():
    b = Batching.of("auto")
    b.observe(10, wall_s=0.1, cost_s=100.0)  # 0.01 s each: would want MAX_AUTO
    assert b.size(workers=4, left=800) == min(MAX_AUTO, math.ceil(800 / (TAIL_SHARE * 4)))
    assert b.size(workers=4, left=20) == math.ceil(20 / (TAIL_SHARE * 4))
    assert b.size(workers=4, left=1) == 1
    # a clock budget: 10 s of clock each at 4 workers, 50 clock-seconds left -> 20 candidates left
    assert b.size(workers=4, clock_left_s=50.0) == math.ceil(20 / (TAIL_SHARE * 4))


def test_auto_is_the_default_and_words_other_than_auto_are_refused(nb201_path):
    assert recipe(nb201_path).backend.candidates_per_trial == "auto"
    with pytest.raises(RecipeError, match="backend.candidates_per_trial"):
        recipe(nb201_path, "backend.candidates_per_trial=many")
    with pytest.raises(RecipeError, match="backend.candidates_per_trial"):
        recipe(nb201_path, "backend.candidates_per_trial=0")


def test_simulate_auto_is_one_per_trial(nb201_path):
    col = Collector()
    build_search(recipe(nb201_path, "budget.sim_seconds=2000"), [col]).run()
    assert len({r.trial_id for r in col.records}) == len(col.records) > 10


def test_tune_auto_batches_from_measured_time_and_records_every_candidate(ray_local, nb201_path, tmp_path):
    """0.02-s evaluations: after the first one-candidate trials, trials of many candidates; every
    candidate once, none failed, both workers used, the strategy fed throughout (REA)."""
    col = Collector()
    r = recipe(nb201_path, f"backend.storage_path={tmp_path}", "backend.name=tune", "backend.workers=2",
               "evaluator.wall_delay_s=0.02", "budget.sim_seconds=null", "budget.max_candidates=200")
    summary = build_search(r, [col]).run()
    sizes = {}
    for rec in col.records:
        sizes[rec.trial_id] = sizes.get(rec.trial_id, 0) + 1
    assert summary.num_candidates == 200 and summary.num_failed == 0
    assert len({r.candidate_id for r in col.records}) == 200
    assert list(sizes.values())[0] == 1 and max(sizes.values()) > 10 and len(sizes) < 60
    assert {rec.worker for rec in col.records} == {0, 1}
    assert any(rec.parent for rec in col.records)  # REA mutated candidates of earlier batches


def test_workers_that_fit_count_bundles_per_node_and_what_is_left():
    from raynas.runtime.startup import workers_that_fit

    nodes = [{"CPU": 8.0, "GPU": 2.0}, {"CPU": 4.0}]
    assert workers_that_fit(16, {"CPU": 1.0, "GPU": 0.0}, nodes) == 12
    assert workers_that_fit(16, {"CPU": 1.0, "GPU": 1.0}, nodes) == 2  # GPUs on one node only
    assert workers_that_fit(4, {"CPU": 1.0}, nodes) == 4
    assert workers_that_fit(16, {"CPU": 1.0}, nodes, available={"CPU": 5.0}) == 5  # a pool holds the rest
    assert workers_that_fit(3, {"CPU": 16.0}, nodes) == 1  # at least one (check_resources refuses it before)


def test_start_up_barrier_holds_first_trials_until_the_workers_are_up(ray_local):
    """Four processes arriving at a barrier for four: none passes before the last arrives; a process
    arriving after it opened passes at once."""
    import time

    import ray

    from raynas.runtime.startup import new_barrier

    barrier = new_barrier(4)
    try:
        t0 = time.monotonic()
        early = [barrier.arrive.remote(pid) for pid in (1, 2, 3)]
        ready, _ = ray.wait(early, timeout=1.0)
        assert not ready  # three of four: held
        last = barrier.arrive.remote(4)
        assert ray.get(early + [last]) == [4, 4, 4, 4] and time.monotonic() - t0 >= 1.0
        t1 = time.monotonic()
        assert ray.get(barrier.arrive.remote(5)) == 5 and time.monotonic() - t1 < 1.0
    finally:
        ray.kill(barrier)


def test_start_up_barrier_opens_when_no_more_come(ray_local):
    """Expecting 3, only 1 comes: it is let through once none arrived for the quiet period."""
    import time

    import ray

    from raynas.runtime.startup import QUIET_S, new_barrier

    barrier = new_barrier(3)
    try:
        t0 = time.monotonic()
        assert ray.get(barrier.arrive.remote(1), timeout=QUIET_S + 10) == 1
        assert time.monotonic() - t0 >= QUIET_S - 0.1
    finally:
        ray.kill(barrier)
