"""Shared by the end-to-end recipe tests: run ``raynas run RECIPE --quiet --set …`` in a fresh process,
then read the search's MLflow run and its candidates table from the sqlite store it wrote."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

import pyarrow.parquet as pq
from mlflow.tracking import MlflowClient

from raynas.tracking.tables import PARQUET_TABLE

TIMEOUT_S = 300


def run_recipe(recipe: Path, cwd: Path, sets: Sequence[str]) -> subprocess.CompletedProcess:
    """``raynas run recipe --quiet`` with each of ``sets`` as a ``--set``, in ``cwd``; it must exit 0."""
    args = [a for s in sets for a in ("--set", s)]
    proc = subprocess.run([sys.executable, "-m", "raynas", "run", str(recipe), "--quiet", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def search_run(work: Path, experiment: str) -> tuple[Any, list[dict]]:
    """The one MLflow run of ``experiment`` in ``work/mlflow.db`` and its candidates table's rows."""
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    rows = pq.read_table(client.download_artifacts(run.info.run_id, PARQUET_TABLE, str(work))).to_pylist()
    return run, rows
