"""``RunSync``: make an MLflow run hold what a ``TrackingState`` says — idempotently.

Run layout (parent run of one search):
  * tags ``RunSpec.tags`` (versions, git commit, recipe, ``raynas.spool_id``), params = the flattened
    recipe, artifact ``recipe.yaml``;
  * per candidate, ``step`` = candidate index: ``candidate/<metric>`` for every visible and hidden
    metric, ``candidate/cost_s``, ``candidate/sim_time_s`` and ``best_so_far/<metric>``, sent with
    ``log_batch`` (≤ 1,000 metrics a call);
  * ``candidates.parquet``: the whole table (failed candidates too, ``status`` ``failed``), rewritten
    at most every ``table_interval_s`` and at the end; at the end also ``candidates.json``
    (``MlflowClient.log_table``: the UI shows it as a table) and ``plots/progress.png``, ``plots/pareto.png``;
  * at the end: summary metrics (``best_<metric>``, ``num_candidates`` …), ``RunEnd.tags``, status;
  * with ``run_per_candidate``, one nested child run per candidate (tag ``mlflow.parentRunId``)
    holding its lineage as params and its metrics at step 0 — the slow path, for users who ask.

Idempotence. ``sync()`` may fail anywhere (server down, response lost after the server committed).
After a failure the next ``sync()`` first *reconciles*: it finds the run by its ``raynas.spool_id``
tag, reads the highest step each candidate metric already has, which child runs exist, and which
summary metrics are set; it then sends only what is missing. ``log_batch`` is one transaction on the
server and batches go out in index order, so "every step above the server's highest" is exact: no
candidate is lost and none is logged twice. Files are overwritten whole, which is idempotent by itself;
``candidates.json`` is written once (``log_table`` appends to an existing file).
"""
from __future__ import annotations

import json
import os
import re
import tempfile
import time
import warnings
from typing import Any, Callable, Iterable

from raynas.metrics import COST_S, RUNNING, SIM_TIME_S
from raynas.runtime.records import CandidateRecord
from raynas.tracking import plots, split_runs, tables
from raynas.tracking.spool import TrackingState

MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_PER_BATCH = 100
CANDIDATE_PREFIX = "candidate/"
BEST_SO_FAR_PREFIX = "best_so_far/"
RECIPE_ARTIFACT = "recipe.yaml"
SPOOL_ID_TAG = "raynas.spool_id"
METRIC_TAG = "raynas.metric"
MODE_TAG = "raynas.mode"
CANDIDATE_INDEX_TAG = "raynas.candidate_index"
PARENT_RUN_TAG = "mlflow.parentRunId"
LOGGED_ARTIFACTS_TAG = "mlflow.loggedArtifacts"
NOT_FOUND = "RESOURCE_DOES_NOT_EXIST"
EXPERIMENT_KIND_TAG, MODEL_DEVELOPMENT = "mlflow.experimentKind", "custom_model_development"


_UNSAFE = re.compile(r"[^/\w.\- ]")  # MLflow's metric-name alphabet, less ':' (refused on Windows)


def metric_name(name: str) -> str:
    """``name`` with every character MLflow refuses in a metric name replaced by ``_``: a refused name
    fails the whole batch on every retry, so no evaluator's metric name may reach MLflow unchecked."""
    return _UNSAFE.sub("_", name)


def _chunks(items: list, size: int) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def record_values(rec: CandidateRecord) -> dict[str, float]:
    """What is logged of a candidate: its metrics, hidden metrics, clock cost and finishing time."""
    return {**rec.metrics, **rec.hidden, COST_S: rec.cost_s, SIM_TIME_S: rec.sim_end_s}


def candidate_metrics(rec: CandidateRecord, best: float | None, metric: str) -> dict[str, float]:
    """The per-candidate metric keys and values logged at ``step = rec.index``."""
    values = record_values(rec)
    out = {CANDIDATE_PREFIX + metric_name(k): float(v) for k, v in values.items()}
    if best is not None:
        out[BEST_SO_FAR_PREFIX + metric_name(metric)] = float(best)
    return out


class RunSync:
    """Pushes a ``TrackingState`` to MLflow; see the module docstring for the layout and guarantees.

    ``client`` is an ``MlflowClient`` (the tracker sets it before its first ``sync()``);
    ``on_run(run_id)`` is called once the run exists (the tracker records it in its spool).
    A request the store refuses (``resilience.refused``: an invalid value, say) is skipped, never
    retried, and its MLflow message appended to ``refusals``; ``sync()`` raises whatever else the client
    raises (and a refusal of the experiment or the run itself); the caller decides when to retry.
    """

    def __init__(self, client, state: TrackingState, on_run: Callable[[str], None] = lambda _: None,
                 table_interval_s: float = 30.0, reconcile: bool = False) -> None:
        self.client = client
        self.state = state
        self.on_run = on_run
        self.table_interval_s = table_interval_s
        self.suspect = reconcile  # True: the server may hold part of what we are about to send
        self.acked = 0  # records[:acked] are on the server
        self.finished = False
        self.experiment_id: str | None = None
        self._have: dict[str, int] = {}  # metric key -> highest step on the server (after reconcile)
        self._children: dict[int, Any] = {}  # candidate index -> existing child run (after reconcile)
        self._done: set[str] = set()  # finished setup/finish steps
        self._reconciled = False  # the server may hold part of the summary too
        self._table_at = time.monotonic()
        self.refusals: list[str] = []  # "<what>: <MLflow's message>" of each request the store refused

    @property
    def pending(self) -> int:
        """Candidates not yet confirmed on the server."""
        return len(self.state.records) - self.acked

    def sync(self) -> None:
        try:
            self._ensure_run()
            if self.suspect:
                self._reconcile()
            self._send_candidates()
            if self.state.end is not None and not self.finished:
                self._finish()
        except BaseException:
            self.suspect = True
            raise

    def _refusable(self, what: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``call(*args, **kwargs)``; a refusal is noted in ``refusals`` and skipped (``None``)."""
        from raynas.tracking.resilience import reason, refused

        try:
            return call(*args, **kwargs)
        except Exception as err:
            if not refused(err):
                raise
            self.refusals.append(f"{what}: {reason(err, limit=300)}")
            return None

    # --- run -------------------------------------------------------------------------------------
    def _ensure_run(self) -> None:
        spec = self.state.spec
        if self.experiment_id is None:
            self.experiment_id = self._experiment_id(spec.experiment, spec.artifact_location)
        if self.state.run_id is not None and self.suspect and not self._run_exists(self.state.run_id):
            self.state.run_id = None  # e.g. replayed into another store
        if self.state.run_id is None and self.suspect:
            self.state.run_id = self._find_run_by_spool_id()
            if self.state.run_id:
                self.on_run(self.state.run_id)
        if self.state.run_id is None:
            tags = {**spec.tags, SPOOL_ID_TAG: spec.spool_id, METRIC_TAG: spec.metric, MODE_TAG: spec.mode}
            run = self.client.create_run(self.experiment_id, tags=tags, run_name=spec.run_name)
            self.state.run_id = run.info.run_id
            self.on_run(self.state.run_id)
        if "setup" not in self._done:
            from mlflow.entities import Param

            params = [Param(k, v) for k, v in spec.params.items()]
            for chunk in _chunks(params, MAX_PARAMS_PER_BATCH):
                self._refusable("the recipe's params", self.client.log_batch, self.state.run_id, params=chunk)
            self._refusable(RECIPE_ARTIFACT, self.client.log_text, self.state.run_id, spec.recipe_yaml, RECIPE_ARTIFACT)
            self._done.add("setup")

    def _experiment_id(self, name: str, artifact_location: str | None) -> str:
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        return self.client.create_experiment(name, artifact_location=artifact_location,
                                             tags={EXPERIMENT_KIND_TAG: MODEL_DEVELOPMENT})

    def _run_exists(self, run_id: str) -> bool:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_run(run_id)
            return True
        except MlflowException as err:
            if err.error_code == NOT_FOUND:
                return False
            raise

    def _find_run_by_spool_id(self) -> str | None:
        runs = self.client.search_runs([self.experiment_id], max_results=1,
                                       filter_string=f"tags.`{SPOOL_ID_TAG}` = '{self.state.spec.spool_id}'")
        return runs[0].info.run_id if runs else None

    # --- reconcile ---------------------------------------------------------------------------------
    def _reconcile(self) -> None:
        """Learn what the server already holds, so the next sends skip it."""
        run_id, n = self.state.run_id, len(self.state.records)
        keys = set()
        for rec, best in zip(self.state.records, self.state.best_so_far):
            keys.update(candidate_metrics(rec, best, self.state.spec.metric))
        self._have = {k: max((m.step for m in self.client.get_metric_history(run_id, k)), default=-1)
                      for k in sorted(keys)}
        self.acked = min([self._have[k] + 1 for k in keys] + [n])
        if self.state.spec.run_per_candidate:
            self._children = self._existing_children()
            complete = {i for i, run in self._children.items() if run.data.metrics}
            self.acked = min([i for i in range(self.acked) if i not in complete] + [self.acked])
        self._reconciled = True
        self.suspect = False

    def _existing_children(self) -> dict[int, Any]:
        found, token = {}, None
        while True:
            page = self.client.search_runs([self.experiment_id], max_results=1000, page_token=token,
                                           filter_string=f"tags.`{PARENT_RUN_TAG}` = '{self.state.run_id}'")
            for run in page:
                found[int(run.data.tags[CANDIDATE_INDEX_TAG])] = run
            token = page.token
            if not token:
                return found

    # --- candidates --------------------------------------------------------------------------------
    def _send_candidates(self) -> None:
        from mlflow.entities import Metric

        state, start = self.state, self.acked
        n = len(state.records)
        if start < n:
            now = int(time.time() * 1000)
            metrics = [Metric(k, v, now, rec.index)
                       for rec, best in zip(state.records[start:n], state.best_so_far[start:n])
                       for k, v in candidate_metrics(rec, best, state.spec.metric).items()
                       if rec.index > self._have.get(k, -1)]
            for chunk in _chunks(metrics, MAX_METRICS_PER_BATCH):
                steps = f"candidates {chunk[0].step}-{chunk[-1].step}"
                self._refusable(steps, self.client.log_batch, state.run_id, metrics=chunk)
            if state.spec.run_per_candidate:
                for rec in state.records[start:n]:
                    self._refusable(f"candidate {rec.index}'s child run", self._child_run, rec)
            self.acked, self._have = n, {}
        if (n or state.failures) and time.monotonic() - self._table_at >= self.table_interval_s:
            self._log_parquet()

    def _child_run(self, rec: CandidateRecord) -> None:
        from mlflow.entities import Metric, Param

        existing = self._children.pop(rec.index, None)
        if existing is not None and existing.data.metrics:
            if existing.info.status == RUNNING:
                self.client.set_terminated(existing.info.run_id)
            return
        if existing is None:
            tags = {PARENT_RUN_TAG: self.state.run_id, CANDIDATE_INDEX_TAG: str(rec.index)}
            existing = self.client.create_run(self.experiment_id, tags=tags,
                                              run_name=f"candidate-{rec.index:05d}")
        row = tables.row(rec)
        params = [Param(k, str(row[k])) for k in ("arch", "canonical", *tables.LINEAGE)]
        now_ms = int(time.time() * 1000)
        metrics = [Metric(metric_name(k), float(v), now_ms, 0) for k, v in record_values(rec).items()]
        self.client.log_batch(existing.info.run_id, metrics=metrics, params=params)  # one transaction
        self.client.set_terminated(existing.info.run_id)

    def _log_parquet(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = tables.write_parquet(self.state.records, os.path.join(tmp, tables.PARQUET_TABLE),
                                        self.state.failures)
            self._refusable(tables.PARQUET_TABLE, self.client.log_artifact, self.state.run_id, str(path))
        self._table_at = time.monotonic()

    # --- end -----------------------------------------------------------------------------------------
    def _finish(self) -> None:
        from mlflow.entities import Metric, RunTag

        state, end, run_id = self.state, self.state.end, self.state.run_id
        if "summary" not in self._done:
            have = set(self.client.get_run(run_id).data.metrics) if self._reconciled else set()
            now = int(time.time() * 1000)
            metrics = [Metric(metric_name(k), float(v), now, 0) for k, v in end.metrics.items()
                       if metric_name(k) not in have]
            tags = [RunTag(k, v) for k, v in end.tags.items()]
            self._refusable("the summary", self.client.log_batch, run_id, metrics=metrics, tags=tags)
            self._done.add("summary")
        if state.records or state.failures:
            self._log_parquet()
            self._refusable(tables.MLFLOW_TABLE, self._log_mlflow_table)
            if state.spec.plots and state.records:
                self._refusable("the plots", self._log_plots)
        if end.training and end.training.get(split_runs.KIND) == split_runs.FEW_SHOT:
            self._refusable("the split tree", split_runs.log_split_tree, self.client, self.experiment_id, run_id,
                            end.training)
        self.client.set_terminated(run_id, status=end.status)
        self.finished = True

    def _log_mlflow_table(self) -> None:
        run_id = self.state.run_id
        if tables.MLFLOW_TABLE not in [f.path for f in self.client.list_artifacts(run_id)]:
            with warnings.catch_warnings():  # MLflow's own pandas-3 deprecation, not ours to fix
                warnings.filterwarnings("ignore", message=".*select_dtypes.*")
                self.client.log_table(run_id, data=tables.dataframe(self.state.records, self.state.failures),
                                      artifact_file=tables.MLFLOW_TABLE)
            return
        # written by an earlier attempt that failed after the upload: make sure the UI knows it
        logged = json.loads(self.client.get_run(run_id).data.tags.get(LOGGED_ARTIFACTS_TAG, "[]"))
        entry = {"path": tables.MLFLOW_TABLE, "type": "table"}
        if entry not in logged:
            self.client.set_tag(run_id, LOGGED_ARTIFACTS_TAG, json.dumps([*logged, entry]))

    def _log_plots(self) -> None:
        spec, records = self.state.spec, self.state.records
        with tempfile.TemporaryDirectory() as tmp:
            plots.save_progress(records, spec.metric, os.path.join(tmp, plots.PROGRESS_PNG), spec.mode)
            plots.save_pareto(records, spec.metric, os.path.join(tmp, plots.PARETO_PNG), spec.mode)
            self.client.log_artifacts(self.state.run_id, os.path.join(tmp, "plots"), "plots")
