"""End to end: ``raynas run recipes/vit-digits-rea.yaml`` (shrunk by ``--set``: one training epoch, a few
candidates) on local Ray Tune into a real sqlite MLflow store — the transformer supernet trained in the
pool's start-up task, served by two replicas, searched by REA, every candidate recorded with the weights
version that scored it."""
from __future__ import annotations

from pathlib import Path

import pytest

from raynas.space.transformer import TransformerSpace
from tests.cli.recipe_runs import run_recipe, search_run

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "vit-digits-rea.yaml"
NAME = "vit-digits-rea"
CANDIDATES = 6
SMALL = ["evaluator.train.epochs=1", "evaluator.train.batch_size=128", "evaluator.sampling_config.num_random=1",
         f"budget.max_candidates={CANDIDATES}", "strategy.population_size=4", "strategy.sample_size=2"]


@pytest.fixture(scope="module")
def vit_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("work")
    return work, run_recipe(RECIPE, work, SMALL)


def test_prints_the_best_transformer_arch(vit_run):
    _, proc = vit_run
    best = next(line for line in proc.stdout.splitlines() if line.startswith("Best arch: "))
    assert TransformerSpace().contains(TransformerSpace().from_str(best.removeprefix("Best arch: ")))


def test_every_candidate_is_in_mlflow_with_the_served_weights(vit_run):
    work, _ = vit_run
    run, rows = search_run(work, NAME)
    space = TransformerSpace()
    assert run.info.status == "FINISHED" and len(rows) == CANDIDATES
    assert len({space.canonical(space.from_str(r["arch"])) for r in rows}) == CANDIDATES  # dedup: function
    assert len({r["weights_version"] for r in rows}) == 1 and all(0 <= r["valid_acc"] <= 100 for r in rows)
    assert list((work / ".raynas" / "supernets").glob("*.npz"))  # the trained weights are kept for reuse
