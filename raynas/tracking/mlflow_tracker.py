"""MLflow tracking: one parent run per search, candidates logged in batches, outage-safe.

Experiment = ``tracking.experiment`` or the recipe name; the run layout is described in
``raynas.tracking.sync``. The tracker is a ``SearchListener``:
  * every candidate is first appended to a local spool (``.raynas/spool/<id>.jsonl``, see
    ``raynas.tracking.spool``), then sent in batches (``batch_size`` candidates or every
    ``flush_interval_s``; the spool is fsynced first) through ``RunSync``, never one run per candidate
    (unless ``run_per_candidate``);
  * off the search's critical path: a flush hands the batches to MLflow's asynchronous logging and
    returns (``RunSync.sync(wait=False)``); at most ``max_in_flight`` batches are in flight, the
    candidates beyond wait in the spool and the state until a later flush finds the oldest batch done
    (backpressure without stalling the search: memory holds a bounded number of batches, the backlog
    is the records the tracker keeps anyway). A batch counts as sent once MLflow reports it logged;
    its failure is an outage or a refusal like any other. ``on_end`` waits for every batch;
  * an outage (an unreachable or overloaded store: ``resilience.outage``) never reaches the search: the
    tracker warns once, keeps spooling, and retries with exponential backoff (``Backoff``), each attempt
    with short HTTP timeouts (``quick_http``); when the server is back, ``RunSync`` reconciles and sends
    only what the server lacks;
  * a request the store refuses (an invalid value …) is reported once with MLflow's message and skipped;
    if it refuses the run itself, tracking stops and the spool keeps everything for later;
  * any other error is a bug, and propagates (the search fails with it);
  * at the end it retries ``end_retry_delays_s`` more times; if the server is still away it leaves the
    spool, warns with the replay command (``raynas resume-tracking``), and ``pending`` tells how many
    candidates wait there. Otherwise the spool is deleted.
"""
from __future__ import annotations

import dataclasses
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Sequence, TextIO

from raynas.metrics import MAX, NUM_CANDIDATES, VALID_ACC
from raynas.recipes.loader import dump_recipe
from raynas.recipes.schema import TrackingSpec
from raynas.runtime.records import (
    INFO_METRIC,
    INFO_MODE,
    INFO_RECIPE,
    SEARCH_INFO,
    CandidateRecord,
    FailedCandidate,
    SearchSummary,
)
from raynas.tracking.context import cluster_tags, version_tags
from raynas.tracking.inflight import MAX_IN_FLIGHT
from raynas.tracking.resilience import Background, Backoff, outage, reason, refused
from raynas.tracking.spool import RunEnd, RunSpec, Spool, TrackingState, load_state
from raynas.tracking.sync import RunSync
from raynas.tracking.tables import PARQUET_TABLE

MAX_PARAM_LEN = 6000
BEST_ARCH_TAG = "raynas.best_arch"
STOP_REASON_TAG = "raynas.stop_reason"  # why a search stopped early (too many failed candidates)
SPOOL_DIR = Path(".raynas") / "spool"
RESUME_COMMAND = "raynas resume-tracking"
LOG_PREFIX = "[raynas] tracking:"


def default_tracking_uri(workdir: str | Path | None = None) -> str:
    """``sqlite:///<workdir>/mlflow.db`` (workdir defaults to the current directory)."""
    return f"sqlite:///{Path(workdir or Path.cwd()).resolve() / 'mlflow.db'}"


def sqlite_path(tracking_uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, else ``None``."""
    prefix = "sqlite:///"
    return Path(tracking_uri[len(prefix):]) if tracking_uri.startswith(prefix) else None


def default_artifact_location(tracking_uri: str, experiment: str) -> str | None:
    """For a local sqlite store, artifacts go to ``mlruns/<experiment>`` beside the database (what
    ``raynas ui`` serves); a server chooses its own."""
    db = sqlite_path(tracking_uri)
    return (db.parent / "mlruns" / experiment).resolve().as_uri() if db else None


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = str(value)[:MAX_PARAM_LEN]
    return out


class MlflowTracker:
    """A ``SearchListener`` that writes the search to MLflow (see the module docstring)."""

    def __init__(self, config: TrackingSpec | None = None, *, metric: str = VALID_ACC, mode: str = MAX,
                 backoff: Backoff | None = None, end_retry_delays_s: Sequence[float] = (1.0, 2.0, 4.0),
                 stream: TextIO | None = None, max_in_flight: int = MAX_IN_FLIGHT) -> None:
        """``config``: a recipe's ``tracking`` section, whole. ``metric``/``mode``: what "best" means
        unless the search says otherwise (``on_start`` info ``metric``/``mode``). ``max_in_flight``:
        batches MLflow may be logging in the background at once (each <= 1,000 metric values)."""
        self.config = config if config is not None else TrackingSpec()
        self.tracking_uri = self.config.tracking_uri or default_tracking_uri()
        self.spool_dir = Path(self.config.spool_dir) if self.config.spool_dir else Path.cwd() / SPOOL_DIR
        self.metric, self.mode = metric, mode
        self.backoff = backoff or Backoff()
        self.end_retry_delays_s = tuple(end_retry_delays_s)
        self.max_in_flight = max_in_flight
        self._background = Background()  # quick HTTP limits while batches are in flight
        self.stream = stream  # None: sys.stderr at write time (keeps the tracker picklable)
        self.state: TrackingState | None = None
        self.spool: Spool | None = None
        self.sync: RunSync | None = None
        self.outages = 0
        self.refused: list[str] = []  # the refusals reported ("<what>: <MLflow's message>")
        self.stopped: str | None = None  # why tracking stopped (the store refused the run itself)
        self._reported = 0
        self._unsent = 0
        self._last_flush = time.monotonic()
        self._down_since: float | None = None
        self._known: set[tuple[str, str]] | None = None  # resumed: (candidate id, arch) already held

    @classmethod
    def resume(cls, spool_path: str | Path, config: TrackingSpec | None = None, **kwargs: Any) -> "MlflowTracker":
        """A tracker continuing the search whose spool is ``spool_path`` (``raynas resume``), in the same
        MLflow run (at ``config.tracking_uri``, default: the one the spool recorded). ``on_start`` creates
        no run; the candidates spooled before stay; a candidate it already holds (same id and arch: a
        trial Tune runs again after the restore) is not logged twice; new candidates continue the run's
        index. ``ValueError`` for a spool that is not a raynas spool or whose search had ended."""
        state = load_state(spool_path)
        if state.end is not None:
            raise ValueError(f"{spool_path}: that search ended ({state.end.status}); nothing to resume")
        config = config if config is not None else TrackingSpec()
        tracker = cls(dataclasses.replace(config, tracking_uri=config.tracking_uri or state.spec.tracking_uri),
                      **kwargs)
        tracker.state, tracker.spool = state, Spool(Path(spool_path))
        tracker._known = {(r.candidate_id, r.arch) for r in state.records}
        return tracker

    @property
    def client(self):
        from mlflow.tracking import MlflowClient

        if not hasattr(self, "_client"):
            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    def __getstate__(self) -> dict[str, Any]:
        """Without the client (and its store's connections, queue and threads): made again when needed."""
        return {k: v for k, v in self.__dict__.items() if k != "_client"}

    @property
    def run_id(self) -> str | None:
        return self.state.run_id if self.state else None

    @property
    def experiment_id(self) -> str | None:
        return self.sync.experiment_id if self.sync else None

    @property
    def pending(self) -> int:
        """Candidates not (yet) on the server; after ``on_end`` they wait in ``spool.path``."""
        return self.sync.pending if self.sync else 0

    # --- listener API ------------------------------------------------------------------------
    def on_start(self, info: dict[str, Any]) -> None:
        recipe, cfg = info[INFO_RECIPE], self.config
        self.metric, self.mode = info.get(INFO_METRIC, self.metric), info.get(INFO_MODE, self.mode)
        if self._known is not None:  # resumed: the run and its spool exist; the server holds part of it
            self.sync = RunSync(None, self.state, on_run=self.spool.run, table_interval_s=cfg.table_interval_s,
                                reconcile=True, max_in_flight=self.max_in_flight)
            self._attempt()
            return
        name = cfg.experiment or recipe.name
        tags = {**version_tags(), "raynas.recipe": recipe.name, "raynas.strategy": recipe.strategy.name,
                "raynas.evaluator": recipe.evaluator.name, "raynas.space": recipe.space.name,
                **{k: str(v) for k, v in info.items() if k not in SEARCH_INFO}}
        spec = RunSpec(
            spool_id=f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}",
            tracking_uri=self.tracking_uri, experiment=name,
            artifact_location=default_artifact_location(self.tracking_uri, name),
            run_name=f"{recipe.strategy.name}-seed{recipe.seed}-{time.strftime('%Y%m%d-%H%M%S')}",
            tags=tags, params=flatten(recipe.to_dict()), recipe_yaml=dump_recipe(recipe),
            metric=self.metric, mode=self.mode, run_per_candidate=cfg.run_per_candidate, plots=cfg.plots)
        self.state = TrackingState(spec)
        self.spool = Spool.create(self.spool_dir, spec)
        self.sync = RunSync(None, self.state, on_run=self.spool.run, table_interval_s=cfg.table_interval_s,
                            max_in_flight=self.max_in_flight)
        self._attempt()

    def on_candidate(self, record: CandidateRecord) -> None:
        if self.state is None:
            return
        if self._known is not None:
            if (record.candidate_id, record.arch) in self._known:
                return
            self._known.add((record.candidate_id, record.arch))
            record = dataclasses.replace(record, index=len(self.state.records))
        self.state.add(record)
        self.spool.candidate(record)
        self._unsent += 1
        due = time.monotonic() - self._last_flush >= self.config.flush_interval_s
        if self._unsent >= self.config.batch_size or due:
            self.flush()

    def on_failure(self, failed: FailedCandidate) -> None:
        """A failed candidate: spooled now, a ``failed`` row of the run's table at the end (once: a
        resumed search may hear of a failure again)."""
        if self.state is None or any((f.trial_id, f.candidate_id) == (failed.trial_id, failed.candidate_id)
                                     for f in self.state.failures):
            return
        self.state.failures.append(failed)
        self.spool.failure(failed)

    def on_end(self, summary: SearchSummary) -> None:
        if self.state is None:
            return
        tags = cluster_tags()
        if summary.best is not None:
            tags[BEST_ARCH_TAG] = summary.best.arch
        if summary.stop_reason is not None:
            tags[STOP_REASON_TAG] = summary.stop_reason
        metrics = summary.metrics(self.metric)
        if self._known is not None:  # resumed: the driver also counted the trials Tune ran again
            metrics[NUM_CANDIDATES] = float(len(self.state.records))
        self.state.end = RunEnd(metrics=metrics, tags=tags, status=summary.status, training=summary.training)
        self.spool.end(self.state.end)
        ok = self._attempt(force=True)
        for delay in self.end_retry_delays_s:
            if ok or self.stopped is not None:
                break
            time.sleep(delay)
            ok = self._attempt(force=True)
        if ok:
            self.spool.remove()
        else:
            why = "server still unreachable" if self.stopped is None else f"tracking stopped ({self.stopped})"
            self._say(f"{why}; {self.pending} candidates (and the run's summary) kept in {self.spool.path}. "
                      f"Replay them when it is back: {RESUME_COMMAND} {self.spool.path}")
        self._background.release()
        summary.run_id = self.run_id

    # --- sending -----------------------------------------------------------------------------
    def flush(self) -> None:
        """Make spooled candidates durable, then hand them to MLflow's background logging unless a
        backoff wait is running; returns without waiting for the store."""
        self._last_flush = time.monotonic()
        if self.spool is None:
            return
        self._unsent = 0
        self._attempt()

    def _attempt(self, force: bool = False) -> bool:
        """fsync the spool, then one sync attempt (skipped while backing off, unless ``force``, which
        also waits for every batch: True then means all is on the server). An outage
        (``resilience.outage``, found in a call or in a finished background batch) is retried later; a
        request the store refuses is reported once and skipped (``RunSync.refusals``), or, when it is
        the run itself, stops tracking (the spool keeps everything); any other error is a bug and
        propagates."""
        self.spool.sync()
        if self.stopped is not None or not (force or self.backoff.ready()):
            return False
        self._background.hold(self.run_id)
        try:
            if self.sync.client is None:  # opening a store can fail too (bad path, migration)
                self.sync.client = self.client
            self.sync.sync(wait=force)
        except Exception as err:
            if refused(err):
                self.stopped = reason(err, limit=300)
                self._say(f"{self.tracking_uri} refused the run ({self.stopped}); tracking stops here, "
                          f"the spool {self.spool.path} keeps every candidate")
                return False
            if not outage(err):
                raise
            self._outage(err)
            return False
        finally:
            if self.sync.in_flight:  # their requests run after this returns: keep the limits (and the run id)
                self._background.hold(self.run_id)
            else:
                self._background.release()
            self._report_refusals()
        if self._down_since is not None:
            self._say(f"server back after {time.monotonic() - self._down_since:.0f} s; "
                      f"caught up ({len(self.state.records)} candidates)")
            self._down_since = None
        self.backoff.reset()
        return True

    def _outage(self, err: Exception) -> None:
        wait = self.backoff.failed()
        if self._down_since is None:
            self._down_since = time.monotonic()
            self.outages += 1
            self._say(f"{self.tracking_uri} cannot be reached ({reason(err)}); spooling to {self.spool.path}, "
                      f"retrying in {wait:.0f} s")

    def _report_refusals(self) -> None:
        """Each refusal once: what was skipped and MLflow's message."""
        for message in self.sync.refusals[self._reported:]:
            if message not in self.refused:
                self.refused.append(message)
                self._say(f"{self.tracking_uri} refused {message}; skipped, not retried "
                          f"(the run's {PARQUET_TABLE} still lists every candidate)")
        self._reported = len(self.sync.refusals)

    def _say(self, message: str) -> None:
        stream = self.stream or sys.stderr
        stream.write(f"\n{LOG_PREFIX} {message}\n")
        stream.flush()
