"""End to end: ``raynas run recipes/vit-digits-rea.yaml`` (shrunk by ``--set``: one training epoch, a few
candidates) on local Ray Tune into a real sqlite MLflow store — the transformer supernet trained in the
pool's start-up task, served by two replicas, searched by REA, every candidate recorded with the weights
version that scored it."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from mlflow.tracking import MlflowClient

from raynas.space.transformer import TransformerSpace
from raynas.tracking.tables import PARQUET_TABLE

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "vit-digits-rea.yaml"
NAME = "vit-digits-rea"
CANDIDATES = 6
SMALL = ["evaluator.train.epochs=1", "evaluator.train.batch_size=128", "evaluator.sampling_config.num_random=1",
         f"budget.max_candidates={CANDIDATES}", "strategy.population_size=4", "strategy.sample_size=2"]


@pytest.fixture(scope="module")
def vit_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("work")
    sets = [a for s in SMALL for a in ("--set", s)]
    proc = subprocess.run([sys.executable, "-m", "raynas", "run", str(RECIPE), "--quiet", *sets],
                          cwd=work, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work, proc


def test_prints_the_best_transformer_arch(vit_run):
    _, proc = vit_run
    best = next(line for line in proc.stdout.splitlines() if line.startswith("Best arch: "))
    assert TransformerSpace().contains(TransformerSpace().from_str(best.removeprefix("Best arch: ")))


def test_every_candidate_is_in_mlflow_with_the_served_weights(vit_run):
    work, _ = vit_run
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name(NAME).experiment_id])
    rows = pq.read_table(client.download_artifacts(run.info.run_id, PARQUET_TABLE, str(work))).to_pylist()
    space = TransformerSpace()
    assert run.info.status == "FINISHED" and len(rows) == CANDIDATES
    assert len({space.canonical(space.from_str(r["arch"])) for r in rows}) == CANDIDATES  # dedup: function
    assert len({r["weights_version"] for r in rows}) == 1 and all(0 <= r["valid_acc"] <= 100 for r in rows)
    assert list((work / ".raynas" / "supernets").glob("*.npz"))  # the trained weights are kept for reuse
