"""Epoch-wise trials on a real local Ray Tune (issue 15): the scratch evaluator's candidates are one trial
each, reporting every epoch; ASHA / asynchronous Hyperband stop bad ones early (recorded with the epochs
they reached, strategies told their last accuracy); a trial whose process dies resumes from its last
epoch's checkpoint and ends where an uninterrupted run ends; recipes that cannot work are one-line
errors naming the field."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from raynas.errors import RecipeError
from raynas.metrics import EPOCHS, FINISHED, TEST_ACC, VALID_ACC
from raynas.recipes import apply_overrides, parse_recipe
from raynas.runtime import build_search
from raynas.runtime.epochs import build_scheduler
from tests.runtime import crashing
from tests.runtime.helpers import Collector
from tests.serving.helpers import TINY_MBV3

EPOCHS_PLANNED = 4
BASE = {
    "name": "epochs-test", "seed": 0, "space": {"name": "mbv3", **TINY_MBV3},
    "evaluator": {"name": "scratch", "train": {"epochs": EPOCHS_PLANNED, "batch_size": 32, "lr": 0.05,
                                                "num_threads": 1}},
    "strategy": {"name": "rea", "population_size": 4, "sample_size": 2},
    "budget": {"max_candidates": 10}, "backend": {"name": "tune", "workers": 2, "cpus_per_worker": 1},
    "ray": {"num_cpus": 2},
}


def recipe(tmp_path, *overrides):
    return parse_recipe(apply_overrides(BASE, [f"backend.storage_path={tmp_path / 'tune'}", *overrides]))


def run(r):
    col = Collector()
    summary = build_search(r, [col]).run()
    return summary, col


def reports_per_trial(tmp_path: Path) -> dict[str, int]:
    """Reports (each with a checkpoint) of every trial of the one experiment under tmp_path: Tune numbers
    a trial's checkpoints from 0 and keeps the latest (``num_to_keep=1``)."""
    (experiment,) = (p for p in (tmp_path / "tune").iterdir() if p.is_dir())
    latest = {}
    for ckpt in experiment.glob("trial_*/checkpoint_*"):
        index = int(ckpt.name.rpartition("_")[2])
        latest[ckpt.parent.name] = max(latest.get(ckpt.parent.name, -1), index)
    return {trial: index + 1 for trial, index in latest.items()}


def test_asha_stops_bad_candidates_early_and_records_the_epoch_they_reached(ray_local, tmp_path):
    summary, col = run(recipe(tmp_path, "backend.scheduler={name: asha, grace_period: 1, reduction_factor: 2}"))
    assert summary.status == FINISHED and summary.num_candidates == len(col.records) == 10
    epochs = [r.metrics[EPOCHS] for r in col.records]
    assert set(epochs) <= {1.0, 2.0, 4.0} and min(epochs) < EPOCHS_PLANNED and max(epochs) == EPOCHS_PLANNED
    assert all(0 <= r.metrics[VALID_ACC] <= 100 and TEST_ACC in r.hidden for r in col.records)
    reports = reports_per_trial(tmp_path)
    by_trial = {r.trial_id: int(r.metrics[EPOCHS]) for r in col.records}
    assert reports == {f"trial_{t}": e for t, e in by_trial.items()}  # one Tune report per epoch trained
    assert summary.best.metrics[EPOCHS] == EPOCHS_PLANNED  # stopped ones rarely beat full training


def test_without_a_scheduler_every_candidate_trains_every_epoch(ray_local, tmp_path):
    summary, col = run(recipe(tmp_path, "budget.max_candidates=3"))
    assert [r.metrics[EPOCHS] for r in col.records] == [EPOCHS_PLANNED] * 3
    assert set(reports_per_trial(tmp_path).values()) == {EPOCHS_PLANNED}


def test_a_trial_whose_process_dies_resumes_from_its_last_epoch(ray_local, tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    with crashing.registered() as cls:
        r = recipe(tmp_path, f"evaluator.name={crashing.CRASHING}", f"evaluator.marker_dir={markers}",
                   "evaluator.crash_after=2", "budget.max_candidates=2", "backend.max_failures=1")
        summary, col = run(r)
        assert summary.status == FINISHED and summary.num_failed == 0 and len(col.records) == 2
        for rec in col.records:
            key = crashing.arch_key(rec.arch)
            assert (markers / f"{crashing.RESUMED}{key}").read_text() == "2"  # restored after epoch 2
            assert rec.metrics[EPOCHS] == EPOCHS_PLANNED
        space = build_search(r).space
        plain = build_search(recipe(tmp_path)).evaluator
        uninterrupted = plain.evaluate([space.from_str(rec.arch) for rec in col.records])
        assert [u.metrics[VALID_ACC] for u in uninterrupted] == [rec.metrics[VALID_ACC] for rec in col.records]
        assert [u.hidden[TEST_ACC] for u in uninterrupted] == [rec.hidden[TEST_ACC] for rec in col.records]
        assert cls is crashing.CrashingScratch


def test_hyperband_runs_every_bracket(ray_local, tmp_path):
    r = recipe(tmp_path, "backend.scheduler={name: hyperband, grace_period: 1, reduction_factor: 2}",
               "budget.max_candidates=6")
    search = build_search(r)
    scheduler = build_scheduler(r.backend.scheduler, search.evaluator, VALID_ACC, "max")
    assert len(scheduler._brackets) == 3  # min epochs 1, 2, 4 up to max_t 4
    summary, col = run(r)
    assert summary.num_candidates == 6 and {r.metrics[EPOCHS] for r in col.records} <= {1.0, 2.0, 4.0}


@pytest.mark.parametrize("overrides, field", [
    (["backend.name=simulate", "backend.scheduler={name: asha}"], "backend.scheduler"),
    (["backend.scheduler={name: asha, max_t: 9}"], "backend.scheduler.max_t"),
    (["backend.candidates_per_trial=3"], "backend.candidates_per_trial"),
])
def test_a_scheduler_that_cannot_apply_is_an_error_naming_the_field(tmp_path, overrides, field):
    with pytest.raises(RecipeError) as err:
        build_search(recipe(tmp_path, *overrides))
    assert err.value.field == field and "\n" not in str(err.value)


def test_a_scheduler_over_an_evaluator_without_epochs_is_an_error(tmp_path, nb201_path):
    r = parse_recipe(apply_overrides(BASE, ["space={name: nb201}", "evaluator={name: tabular}",
                                            f"evaluator.data_path={nb201_path}", "backend.scheduler={name: asha}"]))
    with pytest.raises(RecipeError) as err:
        build_search(r)
    assert err.value.field == "backend.scheduler" and "does not report per epoch" in str(err.value)


def test_the_recipe_round_trips_its_scheduler(tmp_path):
    r = recipe(tmp_path, "backend.scheduler={name: asha, max_t: 3}")
    assert json.loads(json.dumps(r.to_dict()))["backend"]["scheduler"]["max_t"] == 3
