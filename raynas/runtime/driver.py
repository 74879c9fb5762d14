"""``SearchDriver``: the Searcher Tune (or the simulator) talks to. It wraps a strategy and adds the
search clock, the budget, candidate batching and event delivery to listeners.

A trial config is ``{"candidates": [{"id", "arch", "parent", "variation", "generation"}, …]}`` with as
many entries as ``batching`` says (``runtime.batching``: a fixed number, or sized from the measured
evaluation time, to amortise per-trial overhead); the trial reports ``{"candidates": [Result.to_dict(),
…], "eval_wall_s": seconds}``. Each candidate is forwarded to the strategy as if it were a
trial of its own, with only the visible metrics. A candidate that would finish after the simulated
budget is dropped (the strategy is told it failed) and not recorded.

Failures. A trial that errors (after the backend's retries) fails all its candidates once the backend
has reported the error (``trial_error``): the strategy is told, ``num_failed`` counts them, and one
``FailedCandidate`` per candidate goes to the summary and the listeners. Except a trial *lost* with its
worker (``lost.is_lost``: a dead actor, worker or node): its candidates, the same ids, are proposed
again in new trials before any new one, up to ``requeue_lost`` times each; until no trial is running
or failing the driver then waits (``suggest`` returns ``None``) instead of finishing, so a candidate
lost at the end of the budget still runs. Once more than ``max_failed`` candidates have failed, or
when every candidate so far failed at the end, the search stops with ``summary.stop_reason`` set and
status ``FAILED``.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Sequence

from ray.tune.search import Searcher

from raynas.evaluators.base import Result
from raynas.metrics import FAILED, FINISHED, MAX
from raynas.runtime.batching import Batching
from raynas.runtime.clock import VirtualWorkers
from raynas.runtime.lost import is_lost
from raynas.runtime.records import FAILURE_HOOK, CandidateRecord, FailedCandidate, SearchListener, SearchSummary
from raynas.state import PickledState
from raynas.strategies.base import Strategy
from raynas.strategies.constraints import Constraint, satisfied

CANDIDATES = "candidates"
EVAL_WALL_S = "eval_wall_s"  # a trial's result: wall seconds its evaluator took for all its candidates
NO_RESULTS = "the trial ended without reporting its candidates' results"
NOT_REPORTED = "the backend reported no error message"


class SearchDriver(PickledState, Searcher):
    def __init__(self, strategy: Strategy, *, sim_budget_s: float | None, max_candidates: int | None,
                 workers: int = 1, batching: Batching | None = None,
                 listeners: Sequence[SearchListener] = (), reference: dict | None = None,
                 constraints: Sequence[Constraint] = (),
                 extra_metrics: Callable[[Any], dict[str, float]] | None = None,
                 max_failed: int | None = None, requeue_lost: int = 0) -> None:
        super().__init__(metric=strategy.metric, mode=strategy.mode)
        self.strategy = strategy
        self.space = strategy.space
        self.sim_budget_s = sim_budget_s
        self.max_candidates = max_candidates
        self.batching = batching or Batching(1)
        self.workers = VirtualWorkers(workers)
        self.listeners = list(listeners)
        self.constraints = list(constraints)
        self.extra_metrics = extra_metrics  # arch -> metrics added to every record (per-device latency)
        self.max_failed = max_failed  # None: no limit
        self.pending: dict[str, list[dict[str, Any]]] = {}
        self.failing: dict[str, list[dict[str, Any]]] = {}  # failed trials whose error is not yet known
        self.requeue_lost = requeue_lost
        self.requeued: list[dict[str, Any]] = []  # candidates of lost trials, to propose again
        self.losses: dict[str, int] = {}  # candidate id -> times its trial was lost
        self.num_issued = 0
        self.summary = SearchSummary(reference=dict(reference or {}), metric=strategy.metric)
        self._t0 = time.perf_counter()

    # --- budget ------------------------------------------------------------------------------
    def exhausted(self) -> bool:
        if self.too_many_failures():
            return True
        if self.max_candidates is not None and self.num_issued >= self.max_candidates:
            return True
        start = self.workers.next_start()
        return self.sim_budget_s is not None and start is not None and start >= self.sim_budget_s

    def too_many_failures(self) -> bool:
        return self.max_failed is not None and self.summary.num_failed > self.max_failed

    # --- Searcher API ------------------------------------------------------------------------
    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec) -> bool:
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.too_many_failures():
            return Searcher.FINISHED
        if not self.requeued and self.exhausted():
            # A running trial may yet be lost and its candidates come back: wait for it.
            return None if self.requeue_lost and (self.pending or self.failing) else Searcher.FINISHED
        if self.workers.acquire(trial_id) is None:
            return None
        cands = self._again() or self._new(trial_id)
        if not cands:
            self.workers.release(trial_id)
            return None
        self.pending[trial_id] = cands
        return {CANDIDATES: cands}

    def _again(self) -> list[dict[str, Any]]:
        """Up to a trial's worth of the lost trials' candidates."""
        n = self._batch()
        cands, self.requeued = self.requeued[:n], self.requeued[n:]
        return cands

    def _new(self, trial_id: str) -> list[dict[str, Any]]:
        """Up to a trial's worth of new candidates from the strategy (ids ``<trial_id>/<i>``)."""
        cands = []
        n = self._batch()
        for i in range(n):
            cid = f"{trial_id}/{i}"
            cfg = self.strategy.suggest(cid)
            if cfg is None or cfg == Searcher.FINISHED:
                break
            cands.append({"id": cid, **cfg})
        self.num_issued += len(cands)
        return cands

    def _batch(self) -> int:
        """Candidates for the next trial (``batching``, within what the budget leaves; requeued
        candidates were counted when first issued)."""
        workers = self.workers.num_workers
        if self.requeued:
            return self.batching.size(workers)
        left = None if self.max_candidates is None else self.max_candidates - self.num_issued
        clock_left = None if self.sim_budget_s is None else self.sim_budget_s - self.workers.now()
        return self.batching.size(workers, left, clock_left)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        cands = self.pending.pop(trial_id, None)
        if cands is None:
            return
        results = (result or {}).get(CANDIDATES)
        if error or not results or len(results) != len(cands):
            self.workers.release(trial_id)
            self.failing[trial_id] = cands
            if not error:
                self.trial_error(trial_id, NO_RESULTS)
            return
        t = self.workers.start_of(trial_id)
        worker = self.workers.busy[trial_id]
        parsed = [Result.from_dict(r) for r in results]
        self.batching.observe(len(cands), result.get(EVAL_WALL_S), sum(r.cost_s for r in parsed))
        for cand, res in zip(cands, parsed):
            end = t + res.cost_s
            if self.sim_budget_s is not None and end > self.sim_budget_s:
                self.strategy.on_trial_complete(cand["id"], error=True)
                self.summary.num_over_budget += 1
            else:
                self.strategy.on_trial_complete(cand["id"], dict(res.metrics))
                self._record(trial_id, worker, cand, res, t, end)
            t = end  # the worker spent the time either way
        self.workers.release(trial_id, t)

    def trial_error(self, trial_id: str, error: str) -> None:
        """The error of a failed trial (its first line): its candidates are proposed again if the trial
        was lost (see the module docstring), else each fails: one ``FailedCandidate`` per candidate."""
        wall_s = time.perf_counter() - self._t0
        for cand in self.failing.pop(trial_id, []):
            times = self.losses.get(cand["id"], 0)
            if is_lost(error) and times < self.requeue_lost:
                self.losses[cand["id"]] = times + 1
                self.requeued.append(cand)
                continue
            self.strategy.on_trial_complete(cand["id"], error=True)
            self.summary.num_failed += 1
            failed = FailedCandidate(trial_id=trial_id, candidate_id=cand["id"], arch=cand["arch"],
                                     parent=cand.get("parent"), variation=cand.get("variation"),
                                     generation=int(cand.get("generation", 0)), error=error, wall_s=wall_s)
            self.summary.failures.append(failed)
            for listener in self.listeners:
                hook = getattr(listener, FAILURE_HOOK, None)
                if hook is not None:
                    hook(failed)

    # --- events ------------------------------------------------------------------------------
    def _record(self, trial_id: str, worker: int, cand: dict, res: Result, start: float, end: float) -> None:
        arch = self.space.from_str(cand["arch"])
        metrics = {**(self.extra_metrics(arch) if self.extra_metrics else {}), **res.metrics}
        rec = CandidateRecord(
            index=self.summary.num_candidates, trial_id=trial_id, candidate_id=cand["id"],
            arch=cand["arch"], canonical=self.space.canonical(arch), parent=cand.get("parent"),
            variation=cand.get("variation"), generation=int(cand.get("generation", 0)),
            metrics=metrics, hidden=dict(res.hidden), cost_s=res.cost_s, sim_start_s=start,
            sim_end_s=end, wall_s=time.perf_counter() - self._t0, worker=worker, evaluator=res.evaluator,
            tags=dict(res.tags), feasible=satisfied(self.constraints, metrics))
        self.summary.num_candidates += 1
        self.summary.sim_time_s = max(self.summary.sim_time_s, end)
        if self._better(rec, self.summary.best):
            self.summary.best = rec
        for listener in self.listeners:
            listener.on_candidate(rec)

    def _better(self, rec: CandidateRecord, best: CandidateRecord | None) -> bool:
        """Better on the strategy's metric; only feasible candidates can be the best."""
        if not rec.feasible:
            return False
        if best is None or self.metric not in rec.metrics:
            return best is None and self.metric in rec.metrics
        a, b = rec.metrics[self.metric], best.metrics[self.metric]
        return a > b if self.mode == MAX else a < b

    def start(self, info: dict[str, Any]) -> None:
        self._t0 = time.perf_counter()
        for listener in self.listeners:
            listener.on_start(info)

    def finish(self) -> SearchSummary:
        for trial_id in list(self.failing):
            self.trial_error(trial_id, NOT_REPORTED)
        self.summary.stop_reason = self._stop_reason()
        if self.summary.stop_reason is not None and self.summary.status == FINISHED:
            self.summary.status = FAILED
        self.summary.wall_time_s = time.perf_counter() - self._t0
        self.summary.strategy_metrics = self.strategy.report()
        for listener in self.listeners:
            listener.on_end(self.summary)
        return self.summary

    def _stop_reason(self) -> str | None:
        """Why the search ended on failures, in one line, or ``None``."""
        s = self.summary
        if not s.failures:
            return None
        first = s.failures[0].error
        if self.too_many_failures():
            return (f"{s.num_failed} candidates failed, more than budget.max_failed ({self.max_failed}); "
                    f"first error: {first}")
        if s.num_candidates == 0:
            return f"every candidate failed ({s.num_failed}); first error: {first}"
        return None

    # --- state -------------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles its search algorithm with the experiment; listeners (open files, MLflow
        clients, consoles) belong to this process and are left out."""
        state = self.__dict__.copy()
        state["listeners"] = []
        return state

    def get_state(self) -> dict[str, Any]:
        return {"strategy": self.strategy.get_state(), "workers": self.workers, "batching": self.batching,
                "pending": self.pending,
                "failing": self.failing, "requeued": self.requeued, "losses": self.losses,
                "num_issued": self.num_issued, "summary": self.summary}

    def set_state(self, state: dict[str, Any]) -> None:
        self.strategy.set_state(state["strategy"])
        self.workers, self.pending, self.failing = state["workers"], state["pending"], state.get("failing", {})
        self.batching = state.get("batching", self.batching)
        self.requeued, self.losses = state.get("requeued", []), state.get("losses", {})
        self.num_issued, self.summary = state["num_issued"], state["summary"]
