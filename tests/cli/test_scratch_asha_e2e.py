"""End to end: ``raynas run recipes/mbv3-digits-scratch-asha.yaml`` (shrunk by ``--set``: a tiny mbv3
skeleton, 3 epochs, a few candidates) on local Ray Tune into a real sqlite MLflow store — every candidate
trained from scratch in its own Tune trial, ASHA stopping some after epoch 1, each recorded in MLflow
with the epochs it reached."""
from __future__ import annotations

from pathlib import Path

from raynas.metrics import EPOCHS, VALID_ACC
from tests.cli.recipe_runs import run_recipe, search_run

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "mbv3-digits-scratch-asha.yaml"
NAME = "mbv3-digits-scratch-asha"
CANDIDATES, EPOCHS_PLANNED = 10, 3
SMALL = ["space.depths=[1,2]", "space.stage_widths=[8,16]", "space.stage_strides=[1,2]",
         f"evaluator.train.epochs={EPOCHS_PLANNED}", "evaluator.train.batch_size=32",
         f"backend.scheduler.max_t={EPOCHS_PLANNED}", f"budget.max_candidates={CANDIDATES}",
         "strategy.population_size=4", "strategy.sample_size=2"]


def test_asha_search_records_every_candidate_with_the_epochs_it_reached(tmp_path):
    run_recipe(RECIPE, tmp_path, SMALL)
    run, rows = search_run(tmp_path, NAME)
    assert run.info.status == "FINISHED" and len(rows) == CANDIDATES
    epochs = sorted(r[EPOCHS] for r in rows)
    assert set(epochs) <= {1.0, 3.0} and epochs[0] == 1.0 and epochs[-1] == EPOCHS_PLANNED
    assert all(0 <= r[VALID_ACC] <= 100 and r["evaluator"] == "scratch@1" for r in rows)
    best = max(rows, key=lambda r: r[VALID_ACC])
    assert run.data.metrics[f"best_{VALID_ACC}"] == best[VALID_ACC]
