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

Off the critical path. Candidate metrics go out with MLflow's asynchronous logging
(``log_batch(synchronous=False)``, see ``raynas.tracking.inflight``): ``sync(wait=False)`` hands MLflow
the batches of the candidates not yet sent and returns; at most ``max_in_flight`` batches are in
flight, and the candidates beyond wait in the state (and the spool) until a later ``sync()`` finds the
oldest batch finished — memory holds a bounded number of batches, whatever the backlog. A batch counts
as sent only once MLflow reports it logged; ``acked`` counts the candidates whose batches (and all
before them) were. ``sync()`` (``wait=True``) returns once everything is on the server. Child runs,
artifacts and the summary stay synchronous (MLflow has no asynchronous ``create_run`` nor artifact
upload), and so does everything when ``inflight.background_ok()`` is False.

Idempotence. ``sync()`` may fail anywhere (server down, response lost after the server committed).
On a failure it first waits for the batches still in flight, then the next ``sync()`` *reconciles*:
it finds the run by its ``raynas.spool_id`` tag, reads the steps each candidate metric already has,
which child runs exist, and which summary metrics are set; it then sends only what is missing. The
steps are read exactly (batches may land out of order), so no candidate is lost and none is logged
twice. Files are overwritten whole, which is idempotent by itself; ``candidates.json`` is written once
(``log_table`` appends to an existing file).
"""
from __future__ import annotations

import json
import os
import re
import tempfile
import time
import warnings
from typing import Any, Callable, Iterable, Iterator

from raynas.metrics import COST_S, FEW_SHOT, PARENT_RUN_TAG, RECORD_KIND, RUNNING, SIM_TIME_S
from raynas.runtime.records import CandidateRecord
from raynas.tracking import plots, split_runs, tables
from raynas.tracking.inflight import MAX_IN_FLIGHT, NOTHING, Held, InFlight, Sent, background_ok, queue_settings
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
    retried, and its MLflow message appended to ``refusals`` (a background batch's refusal too, when
    it is found finished); ``sync()`` raises whatever else the client or a background batch raised
    (and a refusal of the experiment or the run itself); the caller decides when to retry.
    ``max_in_flight``: background batches at most (the backpressure bound, see the module docstring).
    """

    def __init__(self, client, state: TrackingState, on_run: Callable[[str], None] = lambda _: None,
                 table_interval_s: float = 30.0, reconcile: bool = False, max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self.client = client
        self.state = state
        self.on_run = on_run
        self.table_interval_s = table_interval_s
        self.suspect = reconcile  # True: the server may hold part of what we are about to send
        self.acked = 0  # records[:acked] are on the server
        self.sent = 0  # records[:sent] were handed to MLflow (records[acked:sent] are in flight)
        self.in_flight = InFlight(max_in_flight)
        self.finished = False
        self.experiment_id: str | None = None
        self._have: dict[str, Held] = {}  # metric key -> steps on the server (after reconcile)
        self._children: dict[int, Any] = {}  # candidate index -> existing child run (after reconcile)
        self._done: set[str] = set()  # finished setup/finish steps
        self._reconciled = False  # the server may hold part of the summary too
        self._table_at = time.monotonic()
        self.refusals: list[str] = []  # "<what>: <MLflow's message>" of each request the store refused

    @property
    def pending(self) -> int:
        """Candidates not yet confirmed on the server."""
        return len(self.state.records) - self.acked

    def sync(self, wait: bool = True) -> None:
        """Bring the run up to date. ``wait=False``: settle the background batches found finished, hand
        MLflow the next ones (at most ``max_in_flight`` in flight) and return; the run's end is left for
        a waiting call. ``wait=True``: return once every candidate and the end are on the server. On any
        error the batches in flight are waited for first, so that the next call reconciles a run nobody
        is writing to."""
        try:
            self._reap()
            self._ensure_run()
            if self.suspect:
                self._reconcile()
            self._send_candidates(wait)
            if wait and self.state.end is not None and not self.finished:
                self._finish()
        except BaseException:
            self._settle_all()
            self.suspect = True
            raise

    def __getstate__(self) -> dict[str, Any]:
        """A copy has no client (the tracker gives it one) and nothing in flight: what was in flight is
        unconfirmed, and the copy reconciles."""
        state = {**self.__dict__, "client": None}
        if self.sent > self.acked:
            state.update(sent=self.acked, suspect=True)
        return state

    # --- background batches ------------------------------------------------------------------------
    def _refusal(self, what: str, err: BaseException) -> bool:
        """True (and noted in ``refusals``) when ``err`` is the store refusing ``what``."""
        from raynas.tracking.resilience import reason, refused

        if refused(err):
            self.refusals.append(f"{what}: {reason(err, limit=300)}")
            return True
        return False

    def _reap(self, block: bool = False) -> None:
        """Settle the finished batches, oldest first (``block``: wait for the oldest). A refused batch
        is noted and counts as done; any other error (an outage, a bug) is raised."""
        while self.in_flight and (block or self.in_flight.oldest_done()):
            block = False
            sent, err = self.in_flight.pop()
            if err is not None and not self._refusal(sent.what, err):
                self._settle_all(confirmed=False)
                raise err
            self.acked = self.in_flight.first if self.in_flight else self.sent

    def _settle_all(self, confirmed: bool = True) -> None:
        """Wait for every batch in flight; those confirmed in order (up to the first failure, or none
        unless ``confirmed``) advance ``acked``; the rest is to be sent again (``sent = acked``), after a
        reconcile (the caller is failing: it marks the server suspect)."""
        while self.in_flight:
            sent, err = self.in_flight.pop()
            confirmed = confirmed and (err is None or self._refusal(sent.what, err))
            if confirmed:
                self.acked = self.in_flight.first if self.in_flight else self.sent
        self.sent = self.acked

    def _refusable(self, what: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``call(*args, **kwargs)``; a refusal is noted in ``refusals`` and skipped (``None``)."""
        try:
            return call(*args, **kwargs)
        except Exception as err:
            if not self._refusal(what, err):
                raise
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
        """Learn what the server already holds (every step of every candidate metric), so the next
        sends skip it; ``acked`` becomes the first candidate it lacks any of."""
        run_id, n = self.state.run_id, len(self.state.records)
        keys = set()
        for values in self._wanted():
            keys.update(values)
        self._have = {k: Held.of(m.step for m in self.client.get_metric_history(run_id, k)) for k in sorted(keys)}
        self.acked = next((i for i, values in enumerate(self._wanted()) if any(i not in self._have[k] for k in values)),
                          n)
        if self.state.spec.run_per_candidate:
            self._children = self._existing_children()
            complete = {i for i, run in self._children.items() if run.data.metrics}
            self.acked = min([i for i in range(self.acked) if i not in complete] + [self.acked])
        self.sent = self.acked
        self._reconciled = True
        self.suspect = False

    def _wanted(self) -> Iterator[dict[str, float]]:
        """Each candidate's metrics, in index order."""
        for rec, best in zip(self.state.records, self.state.best_so_far):
            yield candidate_metrics(rec, best, self.state.spec.metric)

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
    def _send_candidates(self, wait: bool) -> None:
        """Send the candidates from ``sent`` on; with ``wait``, until all are confirmed (waiting on the
        oldest batch whenever ``max_in_flight`` are in flight)."""
        while True:
            while self.sent < len(self.state.records) and not self.in_flight.full:
                self._send_batch()
            if not (wait and self.in_flight):
                break
            self._reap(block=True)
        if self.sent == len(self.state.records):
            self._have = {}
        if not self.in_flight:
            self.acked = self.sent
        if (self.state.records or self.state.failures) and time.monotonic() - self._table_at >= self.table_interval_s:
            self._log_parquet()

    def _send_batch(self) -> None:
        """One batch: the metrics of whole candidates from ``sent`` on (<= ``MAX_METRICS_PER_BATCH``
        unless one candidate alone has more), in the background when MLflow's async logging can be
        trusted (``inflight.background_ok``); then their child runs (synchronous), if asked for."""
        first, (metrics, end) = self.sent, self._next_batch()
        what = f"candidates {first}-{end - 1}"
        background = background_ok()
        with queue_settings(self.state.spec.tracking_uri):
            op = self._refusable(what, self.client.log_batch, self.state.run_id, metrics=metrics,
                                 synchronous=not background) if metrics else None
        if background and op is not None:
            self.in_flight.add(Sent(what, first, end, op))
        if self.state.spec.run_per_candidate:
            for rec in self.state.records[first:end]:
                self._refusable(f"candidate {rec.index}'s child run", self._child_run, rec)
        self.sent = end

    def _next_batch(self) -> tuple[list, int]:
        """The metrics (not already on the server) of candidates ``sent..end-1``, and ``end``."""
        from mlflow.entities import Metric

        state, metrics, i, now = self.state, [], self.sent, int(time.time() * 1000)
        while i < len(state.records):
            rec = state.records[i]
            mine = [Metric(k, v, now, rec.index) for k, v in
                    candidate_metrics(rec, state.best_so_far[i], state.spec.metric).items()
                    if rec.index not in self._have.get(k, NOTHING)]
            if metrics and len(metrics) + len(mine) > MAX_METRICS_PER_BATCH:
                break
            metrics.extend(mine)
            i += 1
        return metrics, i

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
        if end.training and end.training.get(RECORD_KIND) == FEW_SHOT:
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
