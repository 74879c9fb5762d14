"""MLflow tracking: one parent run per search, candidates logged in batches.

Layout of a search's run (experiment = recipe name unless ``tracking.experiment`` is set):
  * params: the resolved recipe, flattened (``strategy.population_size`` …); artifact ``recipe.yaml``;
  * tags: raynas/ray/mlflow versions, git commit, best arch;
  * per-candidate metrics with ``step`` = candidate index: ``candidate/<metric>`` for every visible and
    hidden metric, ``candidate/cost_s``, ``candidate/sim_time_s`` and the running ``best_so_far/<metric>``;
  * ``candidates/part-NNNNN.parquet`` per flush (arch, canonical hash, parent, variation, …), and at the
    end the whole table as ``candidates.parquet``;
  * summary metrics: ``best_<metric>``, ``best_test_acc``, ``regret_test_acc``, ``num_candidates`` …
Batches go through ``MlflowClient.log_batch`` (≤ 1,000 metrics a call), never one run per candidate.
"""
from __future__ import annotations

import os
import subprocess
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

from raynas.recipes.loader import dump_recipe
from raynas.runtime.records import CandidateRecord, SearchSummary

MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_PER_BATCH = 100
CANDIDATE_PREFIX = "candidate/"
BEST_SO_FAR_PREFIX = "best_so_far/"
CANDIDATES_TABLE = "candidates.parquet"
PARTS_DIR = "candidates"
MAX_PARAM_LEN = 6000


def default_tracking_uri(workdir: str | Path | None = None) -> str:
    """``sqlite:///<workdir>/mlflow.db`` (workdir defaults to the current directory)."""
    return f"sqlite:///{Path(workdir or Path.cwd()).resolve() / 'mlflow.db'}"


def default_artifact_location(tracking_uri: str, experiment: str) -> str | None:
    """For a local sqlite store, artifacts go to ``mlruns/`` beside the database; servers choose their own."""
    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri[len("sqlite:///"):])
        return (db.parent / "mlruns" / experiment).resolve().as_uri()
    return None


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = str(value)[:MAX_PARAM_LEN]
    return out


def _chunks(items: list, size: int) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _versions() -> dict[str, str]:
    tags = {}
    for pkg in ("raynas", "ray", "mlflow", "torch"):
        try:
            tags[f"raynas.version.{pkg}"] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                                cwd=Path(__file__).resolve().parent)
        if commit.returncode == 0:
            tags["mlflow.source.git.commit"] = commit.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return tags


class MlflowTracker:
    """A ``SearchListener`` that writes the search to MLflow (see the module docstring)."""

    def __init__(self, tracking_uri: str | None = None, experiment: str | None = None,
                 batch_size: int = 200, flush_interval_s: float = 5.0, metric: str = "valid_acc") -> None:
        self.tracking_uri = tracking_uri or default_tracking_uri()
        self.experiment = experiment
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.metric = metric
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self._buffer: list[CandidateRecord] = []
        self._rows: list[dict[str, Any]] = []
        self._parts = 0
        self._last_flush = time.monotonic()
        self._best: float | None = None

    @property
    def client(self):
        from mlflow.tracking import MlflowClient

        if not hasattr(self, "_client"):
            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    # --- listener API ------------------------------------------------------------------------
    def on_start(self, info: dict[str, Any]) -> None:
        recipe = info["recipe"]
        name = self.experiment or recipe.name
        self.experiment_id = self._experiment_id(name)
        tags = {**_versions(), "raynas.recipe": recipe.name, "raynas.strategy": recipe.strategy.name,
                "raynas.evaluator": recipe.evaluator.name, "raynas.space": recipe.space.name,
                **{k: str(v) for k, v in info.items() if k != "recipe"}}
        run = self.client.create_run(self.experiment_id, tags=tags,
                                     run_name=f"{recipe.strategy.name}-seed{recipe.seed}-{time.strftime('%Y%m%d-%H%M%S')}")
        self.run_id = run.info.run_id
        from mlflow.entities import Param

        params = [Param(k, v) for k, v in flatten(recipe.to_dict()).items()]
        for chunk in _chunks(params, MAX_PARAMS_PER_BATCH):
            self.client.log_batch(self.run_id, params=chunk)
        self.client.log_text(self.run_id, dump_recipe(recipe), "recipe.yaml")

    def on_candidate(self, record: CandidateRecord) -> None:
        self._buffer.append(record)
        due = time.monotonic() - self._last_flush >= self.flush_interval_s
        if len(self._buffer) >= self.batch_size or due:
            self.flush()

    def on_end(self, summary: SearchSummary) -> None:
        if self.run_id is None:
            return
        self.flush()
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, 0) for k, v in summary.metrics(self.metric).items()]
        self.client.log_batch(self.run_id, metrics=metrics)
        if summary.best is not None:
            self.client.set_tag(self.run_id, "raynas.best_arch", summary.best.arch)
        if self._rows:
            self._log_table(self._rows, CANDIDATES_TABLE, artifact_path=None)
        self.client.set_terminated(self.run_id, status=summary.status)
        summary.run_id = self.run_id

    # --- batching ----------------------------------------------------------------------------
    def flush(self) -> None:
        """Send buffered candidates: metrics via ``log_batch`` and one parquet part file."""
        self._last_flush = time.monotonic()
        if not self._buffer or self.run_id is None:
            return
        from mlflow.entities import Metric

        records, self._buffer = self._buffer, []
        now = int(time.time() * 1000)
        metrics: list[Metric] = []
        for rec in records:
            values = {**rec.metrics, **rec.hidden, "cost_s": rec.cost_s, "sim_time_s": rec.sim_end_s}
            metrics += [Metric(CANDIDATE_PREFIX + k, float(v), now, rec.index) for k, v in values.items()]
            score = rec.metrics.get(self.metric)
            if score is not None:
                self._best = score if self._best is None else max(self._best, score)
            if self._best is not None:
                metrics.append(Metric(BEST_SO_FAR_PREFIX + self.metric, self._best, now, rec.index))
        for chunk in _chunks(metrics, MAX_METRICS_PER_BATCH):
            self.client.log_batch(self.run_id, metrics=chunk)
        rows = [rec.row() for rec in records]
        self._rows += rows
        self._log_table(rows, f"part-{self._parts:05d}.parquet", artifact_path=PARTS_DIR)
        self._parts += 1

    def _log_table(self, rows: list[dict[str, Any]], filename: str, artifact_path: str | None) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, filename)
            pq.write_table(pa.Table.from_pylist(rows), path)
            self.client.log_artifact(self.run_id, path, artifact_path)

    def _experiment_id(self, name: str) -> str:
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        return self.client.create_experiment(
            name, artifact_location=default_artifact_location(self.tracking_uri, name))
