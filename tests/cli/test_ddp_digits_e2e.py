"""End to end: ``raynas run recipes/mbv3-digits-ddp.yaml`` (shrunk by ``--set``: a small mbv3 skeleton, one
training epoch, a few candidates) on a 2-CPU local Ray — the supernet trained by a Ray Train
``TorchTrainer`` of 2 gloo workers in the pool's start-up task (its experiment under the backend's
storage), served by two replicas, searched by REA, every candidate recorded with the weights version
that scored it."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from raynas.serving.sources import DDP_DIR
from raynas.space.mbv3 import MBV3Space
from tests.cli.recipe_runs import run_recipe, search_run

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "mbv3-digits-ddp.yaml"
NAME = "mbv3-digits-ddp"
CANDIDATES = 6
SPACE = {"depths": [1, 2], "stage_widths": [8, 16], "stage_strides": [1, 2]}
SMALL = [*(f"space.{k}={v}" for k, v in SPACE.items()),
         "evaluator.train.epochs=1", "evaluator.train.batch_size=128", "evaluator.sampling_config.num_random=1",
         f"budget.max_candidates={CANDIDATES}", "strategy.population_size=4", "strategy.sample_size=2"]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("work")
    return work, run_recipe(RECIPE, work, SMALL)


def test_prints_the_best_arch(ddp_run):
    _, proc = ddp_run
    best = next(line for line in proc.stdout.splitlines() if line.startswith("Best arch: "))
    space = MBV3Space(MBV3Space.Config(**SPACE))
    assert space.contains(space.from_str(best.removeprefix("Best arch: ")))


def test_the_supernet_was_trained_by_ray_train_and_served(ddp_run):
    work, _ = ddp_run
    run, rows = search_run(work, NAME)
    assert run.info.status == "FINISHED" and len(rows) == CANDIDATES
    assert len({r["weights_version"] for r in rows}) == 1 and all(0 <= r["valid_acc"] <= 100 for r in rows)
    assert list((work / ".raynas" / "supernets").glob("*.npz"))  # kept for reuse, as single-process weights
    (experiment,) = (work / ".raynas" / "tune" / DDP_DIR).iterdir()  # one Ray Train run, rank 0's checkpoint
    (state,) = experiment.rglob("state.json")
    assert json.loads(state.read_text())["epochs_done"] == 1
