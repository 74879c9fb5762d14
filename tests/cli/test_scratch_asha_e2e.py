"""End to end: ``raynas run recipes/mbv3-digits-scratch-asha.yaml`` (shrunk by ``--set``: a tiny mbv3
skeleton, 3 epochs, a few candidates) on local Ray Tune into a real sqlite MLflow store — every candidate
trained from scratch in its own Tune trial, ASHA stopping some after epoch 1, each recorded in MLflow
with the epochs it reached."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
from mlflow.tracking import MlflowClient

from raynas.metrics import EPOCHS, VALID_ACC
from raynas.tracking.tables import PARQUET_TABLE

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "mbv3-digits-scratch-asha.yaml"
NAME = "mbv3-digits-scratch-asha"
CANDIDATES, EPOCHS_PLANNED = 10, 3
SMALL = ["space.depths=[1,2]", "space.stage_widths=[8,16]", "space.stage_strides=[1,2]",
         f"evaluator.train.epochs={EPOCHS_PLANNED}", "evaluator.train.batch_size=32",
         f"backend.scheduler.max_t={EPOCHS_PLANNED}", f"budget.max_candidates={CANDIDATES}",
         "strategy.population_size=4", "strategy.sample_size=2"]


def test_asha_search_records_every_candidate_with_the_epochs_it_reached(tmp_path):
    sets = [a for s in SMALL for a in ("--set", s)]
    proc = subprocess.run([sys.executable, "-m", "raynas", "run", str(RECIPE), "--quiet", *sets],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name(NAME).experiment_id])
    rows = pq.read_table(client.download_artifacts(run.info.run_id, PARQUET_TABLE, str(tmp_path))).to_pylist()
    assert run.info.status == "FINISHED" and len(rows) == CANDIDATES
    epochs = sorted(r[EPOCHS] for r in rows)
    assert set(epochs) <= {1.0, 3.0} and epochs[0] == 1.0 and epochs[-1] == EPOCHS_PLANNED
    assert all(0 <= r[VALID_ACC] <= 100 and r["evaluator"] == "scratch@1" for r in rows)
    best = max(rows, key=lambda r: r[VALID_ACC])
    assert run.data.metrics[f"best_{VALID_ACC}"] == best[VALID_ACC]
