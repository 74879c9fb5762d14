"""End to end: ``raynas run recipes/quickstart.yaml`` on local Ray Tune into a real sqlite MLflow store."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from raynas.runtime.records import TUNE_EXPERIMENT
from raynas.tracking.tables import PARQUET_TABLE

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory, nb201_path):
    work = tmp_path_factory.mktemp("work")
    proc = subprocess.run(
        [sys.executable, "-m", "raynas", "run", str(REPO / "recipes" / "quickstart.yaml"),
         "--set", f"evaluator.data_path={nb201_path}", "--set", "ray.num_cpus=2"],
        cwd=work, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work, proc


def test_prints_progress_best_arch_and_ui_command(quickstart):
    work, proc = quickstart
    assert "[raynas] candidates" in proc.stderr and "best valid_acc" in proc.stderr
    assert "Best arch: |" in proc.stdout
    assert f"mlflow ui --backend-store-uri sqlite:///{work / 'mlflow.db'}" in proc.stdout


def test_every_tune_trial_is_a_candidate_in_mlflow(quickstart):
    work, _ = quickstart
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    exp = client.get_experiment_by_name("quickstart")
    (run,) = client.search_runs([exp.experiment_id])
    experiment = Path(run.data.tags[TUNE_EXPERIMENT])  # a Tune experiment of its own, recorded on the run
    assert experiment.parent == (work / ".raynas" / "tune").resolve() and experiment.name.startswith("quickstart-")
    trials = {p.name.removeprefix("trial_") for p in experiment.iterdir() if p.name.startswith("trial_")}
    logged = client.get_metric_history(run.info.run_id, "candidate/valid_acc")
    table = pd.read_parquet(client.download_artifacts(run.info.run_id, PARQUET_TABLE, str(work)))
    assert len(logged) == run.data.metrics["num_candidates"] == len(table) > 80
    # candidates_per_trial: auto batches them: every trial dir is a batch of the table's candidates,
    # except a last one whose candidates all ran over the budget
    assert set(table["trial_id"]) <= trials and len(trials) - len(set(table["trial_id"])) <= 1 < len(trials)
    assert len(trials) < len(table)
    assert run.info.status == "FINISHED" and run.info.artifact_uri.startswith((work / "mlruns").as_uri())
