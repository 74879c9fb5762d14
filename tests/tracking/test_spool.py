"""Outage safety without a server process: a dead port, the spool, replay, and reconciliation against
what a real sqlite store already holds (nothing lost, nothing logged twice)."""
from __future__ import annotations

import io
import os
import time

import pytest
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from raynas.cli import main
from raynas.recipes.schema import TrackingSpec
from raynas.runtime import build_search
from raynas.runtime.records import FailedCandidate
from raynas.tracking import MlflowTracker
from raynas.tracking.resilience import HTTP_TIMEOUT_ENV, QUICK_HTTP, Backoff, outage, quick_http, refused
from raynas.tracking.server import free_port
from raynas.tracking.spool import RunEnd, RunSpec, Spool, TrackingState, load_state
from raynas.tracking.sync import RunSync
from tests.runtime.helpers import Collector, recipe
from tests.tracking.stores import fresh_sqlite_uri

KEYS = ("candidate/valid_acc", "candidate/test_acc", "candidate/cost_s", "candidate/sim_time_s",
        "best_so_far/valid_acc")


def assert_every_candidate_once(client, run_id, n, keys=KEYS):
    for key in keys:
        steps = sorted(m.step for m in client.get_metric_history(run_id, key))
        assert steps == list(range(n)), f"{key}: {len(steps)} points for {n} candidates"


@pytest.fixture(scope="module")
def records(nb201_path):
    col = Collector()
    build_search(recipe(nb201_path, "budget.sim_seconds=6000"), [col]).run()
    return col.records


def _spec(uri, **kw):
    return RunSpec(spool_id=kw.pop("spool_id", "test-spool"), tracking_uri=uri, experiment="spool-test",
                   artifact_location=None, run_name="r", tags={}, params={"a": "1"}, recipe_yaml="name: x\n",
                   plots=False, **kw)


def test_dead_server_never_blocks_the_search_and_the_spool_replays(nb201_path, tmp_path, capsys):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: every request is refused at once
    err = io.StringIO()
    tracker = MlflowTracker(TrackingSpec(dead, batch_size=5, flush_interval_s=0.05, spool_dir=str(tmp_path / "spool")),
                            end_retry_delays_s=(0.1,), stream=err)
    t0 = time.perf_counter()
    summary = build_search(recipe(nb201_path, "budget.sim_seconds=6000"), [tracker]).run()
    assert time.perf_counter() - t0 < 15
    n = summary.num_candidates
    assert n > 30 and tracker.pending == n and tracker.run_id is None and tracker.outages == 1
    log = err.getvalue()
    assert log.count("cannot be reached") == 1 and f"raynas resume-tracking {tracker.spool.path}" in log
    assert len(load_state(tracker.spool.path).records) == n

    uri = fresh_sqlite_uri(tmp_path / "store")  # the server never came back: replay elsewhere
    assert main(["resume-tracking", str(tracker.spool.path), "--tracking-uri", uri]) == 0
    assert f"{n} candidates in MLflow run" in capsys.readouterr().out
    assert not tracker.spool.path.exists()
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("runtime-test").experiment_id])
    assert run.info.status == "FINISHED" and run.data.metrics["num_candidates"] == n
    assert_every_candidate_once(client, run.info.run_id, n)
    assert {f.path for f in client.list_artifacts(run.info.run_id)} >= {
        "candidates.json", "candidates.parquet", "plots", "recipe.yaml"}


def test_reconcile_sends_only_what_the_server_lacks(records, tmp_path):
    uri = fresh_sqlite_uri(tmp_path)
    client = MlflowClient(uri)
    state = TrackingState(_spec(uri, run_per_candidate=True))
    for rec in records[:20]:
        state.add(rec)
    first = RunSync(client, state)
    first.sync()
    run_id = state.run_id
    # what a batch that committed on the server before its response was lost leaves behind:
    client.log_batch(run_id, metrics=[Metric("candidate/valid_acc", records[i].metrics["valid_acc"], 0, i)
                                      for i in range(20, 26)])
    half_made = client.create_run(first.experiment_id, tags={"mlflow.parentRunId": run_id,
                                                             "raynas.candidate_index": "20"})
    for rec in records[20:]:
        state.add(rec)
    state.end = RunEnd(metrics={"num_candidates": float(len(records))}, tags={}, status="FINISHED")
    RunSync(client, state, reconcile=True).sync()  # e.g. a replay from another process

    n = len(records)
    assert_every_candidate_once(client, run_id, n)
    history = sorted(client.get_metric_history(run_id, "candidate/valid_acc"), key=lambda m: m.step)
    assert [m.value for m in history] == [r.metrics["valid_acc"] for r in records]
    children = client.search_runs([first.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{run_id}'",
                                  max_results=1000)
    indices = sorted(int(c.data.tags["raynas.candidate_index"]) for c in children)
    assert indices == list(range(n))  # the half-made child was completed, not duplicated
    assert client.get_run(half_made.info.run_id).data.metrics["valid_acc"] == records[20].metrics["valid_acc"]
    assert len(client.get_metric_history(run_id, "num_candidates")) == 1


def test_a_run_whose_creation_reply_was_lost_is_found_not_duplicated(records, tmp_path):
    uri = fresh_sqlite_uri(tmp_path)
    client = MlflowClient(uri)
    state = TrackingState(_spec(uri, spool_id="lost-reply"))
    RunSync(client, state).sync()
    created, state.run_id = state.run_id, None  # as if the create_run response never arrived
    for rec in records[:10]:
        state.add(rec)
    RunSync(client, state, reconcile=True).sync()
    assert state.run_id == created
    assert len(client.search_runs([client.get_experiment_by_name("spool-test").experiment_id])) == 1


def test_spool_round_trip_ignores_a_torn_last_line(records, tmp_path):
    spec = _spec("http://127.0.0.1:1")
    spool = Spool.create(tmp_path, spec)
    for rec in records[:7]:
        spool.candidate(rec)
    failed = FailedCandidate(trial_id="t", candidate_id="t/0", arch=records[0].arch, parent=None, variation=None,
                             generation=0, error="RuntimeError: boom", wall_s=1.0)
    spool.failure(failed)
    spool.run("abc")
    spool.end(RunEnd({"num_candidates": 7.0}, {"t": "v"}, "FINISHED"))
    spool.sync()
    with open(spool.path, "a") as f:
        f.write('{"kind": "candidate", "rec')
    state = load_state(spool.path)
    assert state.spec == spec and state.run_id == "abc" and state.records == records[:7]
    assert state.end.status == "FINISHED" and len(state.best_so_far) == 7 and state.failures == [failed]


def test_backoff_grows_and_is_capped():
    b = Backoff(base_s=1, factor=2, max_s=5)
    assert [b.failed(now=0) for _ in range(5)] == [1, 2, 4, 5, 5]
    assert not b.ready(now=4.9) and b.ready(now=5)
    b.reset()
    assert b.ready(now=0) and b.delay_s() == 0


def test_quick_http_sets_low_limits_but_respects_the_user(monkeypatch):
    monkeypatch.delenv(HTTP_TIMEOUT_ENV, raising=False)
    with quick_http():
        assert os.environ[HTTP_TIMEOUT_ENV] == QUICK_HTTP[HTTP_TIMEOUT_ENV]
    assert HTTP_TIMEOUT_ENV not in os.environ
    monkeypatch.setenv(HTTP_TIMEOUT_ENV, "77")
    with quick_http():
        assert os.environ[HTTP_TIMEOUT_ENV] == "77"


def test_a_refusal_is_told_apart_from_an_unreachable_store_and_from_a_bug(tmp_path):
    import requests
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST, TEMPORARILY_UNAVAILABLE
    from sqlalchemy.exc import OperationalError

    for no in (MlflowException("Invalid value", error_code=INVALID_PARAMETER_VALUE),
               MlflowException("no such run", error_code=RESOURCE_DOES_NOT_EXIST)):
        assert refused(no) and not outage(no)
    for away in (ConnectionError("Connection refused"), requests.exceptions.ConnectionError("x"), TimeoutError(),
                 MlflowException("API request to http://h failed with exception ..."),  # MLflow's own wrapping
                 MlflowException("busy", error_code=TEMPORARILY_UNAVAILABLE),
                 OperationalError("INSERT", {}, Exception("database is locked"))):
        assert outage(away) and not refused(away)
    for bug in (TypeError("x"), KeyError("k"), ValueError("could not convert string to float")):
        assert not outage(bug) and not refused(bug)


class _Listener:
    """Changes candidate ``index``'s metrics before the tracker sees it (an evaluator stand-in)."""

    def __init__(self, index, **metrics):
        self.index, self.metrics = index, metrics

    def on_start(self, info): pass

    def on_candidate(self, record):
        if record.index == self.index:
            record.metrics.update(self.metrics)

    def on_end(self, summary): pass


def test_a_refused_batch_is_reported_once_and_skipped_and_the_search_goes_on(nb201_path, tmp_path):
    uri, err = fresh_sqlite_uri(tmp_path), io.StringIO()
    tracker = MlflowTracker(TrackingSpec(uri, batch_size=5, flush_interval_s=3600, spool_dir=str(tmp_path / "s"),
                                        plots=False), stream=err)
    odd = _Listener(7, **{"k" * 300: 1.0})  # MLflow refuses metric names over 250 characters
    summary = build_search(recipe(nb201_path, "budget={max_candidates: 15}"), [odd, tracker]).run()
    assert summary.status == "FINISHED" and summary.num_candidates == 15
    log = err.getvalue()
    (said,) = [line for line in log.splitlines() if line.strip()]  # one line, once
    assert "refused candidates 5-9:" in said and "250" in said and said.endswith("skipped, not retried "
                                                                                "(the run's candidates.parquet "
                                                                                "still lists every candidate)")
    assert len(tracker.refused) == 1
    client = MlflowClient(uri)
    steps = sorted(m.step for m in client.get_metric_history(tracker.run_id, "candidate/valid_acc"))
    assert steps == [*range(5), *range(10, 15)]  # the refused batch only, never retried
    assert client.get_run(tracker.run_id).info.status == "FINISHED" and tracker.outages == 0


def test_a_bug_in_tracking_is_not_taken_for_an_outage(nb201_path, tmp_path):
    uri = fresh_sqlite_uri(tmp_path)
    tracker = MlflowTracker(TrackingSpec(uri, batch_size=5, flush_interval_s=3600, spool_dir=str(tmp_path / "s"),
                                        plots=False), end_retry_delays_s=(), stream=io.StringIO())
    broken = _Listener(3, valid_acc="not a number")  # float() of it fails inside the sync code
    with pytest.raises(ValueError, match="could not convert string to float"):
        build_search(recipe(nb201_path, "budget={max_candidates: 15}"), [broken, tracker]).run()
    assert tracker.outages == 0 and tracker.spool.path.exists()
