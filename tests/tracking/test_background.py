"""The tracker's batches go out with MLflow's asynchronous logging, on real stores: a store slower than
the search holds at most ``max_in_flight`` batches and never the search; every batch lands after
``on_end``; an outage while batches are in flight loses nothing and logs nothing twice; a batch missing
between landed ones is found by the reconcile; MLflow's merging of batches is not trusted."""
from __future__ import annotations

import io
import sqlite3
import time

import pytest
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from raynas.recipes.schema import TrackingSpec
from raynas.runtime import build_search
from raynas.runtime.records import SearchSummary
from raynas.tracking import MlflowTracker
from raynas.tracking.inflight import BUFFERING_ENV, done
from raynas.tracking.resilience import Backoff
from raynas.tracking.server import MlflowServer, free_port
from raynas.tracking.spool import RunSpec, TrackingState, load_state
from raynas.tracking.sync import RunSync, candidate_metrics
from tests.runtime.helpers import Collector, recipe
from tests.tracking.stores import fresh_sqlite_uri
from tests.tracking.test_spool import assert_every_candidate_once

N = 60


@pytest.fixture(scope="module")
def search(nb201_path):
    col = Collector()
    r = recipe(nb201_path, f"budget={{max_candidates: {N}}}")
    build_search(r, [col]).run()
    return r, col.records


def _tracker(uri, tmp_path, **kw):
    spec = TrackingSpec(uri, batch_size=5, flush_interval_s=3600, spool_dir=str(tmp_path / "spool"), plots=False)
    return MlflowTracker(spec, stream=kw.pop("stream", io.StringIO()), **kw)


def _end(tracker, records):
    tracker.on_end(SearchSummary(num_candidates=len(records), best=max(records, key=lambda r: r.metrics["valid_acc"])))


def _wait(predicate, what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _async_calls(tracker, monkeypatch) -> list:
    """The operations the tracker's asynchronous ``log_batch`` calls returned, as they are made."""
    ops, log_batch = [], tracker.client.log_batch

    def spy(*args, **kwargs):
        op = log_batch(*args, **kwargs)
        if kwargs.get("synchronous") is False:
            ops.append(op)
        return op

    monkeypatch.setattr(tracker.client, "log_batch", spy)
    return ops


def test_a_store_slower_than_the_search_holds_max_in_flight_batches_and_never_the_search(search, tmp_path,
                                                                                        monkeypatch):
    """The store is locked (another writer's exclusive transaction; MLflow waits up to 20 s for it) while
    all candidates arrive: the tracker takes them at once, hands MLflow 2 batches and keeps the rest in
    the spool; once the store is free, ``on_end`` sends everything, each candidate once."""
    r, records = search
    uri = fresh_sqlite_uri(tmp_path)
    tracker = _tracker(uri, tmp_path, max_in_flight=2)
    tracker.on_start({"recipe": r})
    ops = _async_calls(tracker, monkeypatch)
    lock = sqlite3.connect(uri.removeprefix("sqlite:///"), isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        t0 = time.perf_counter()
        for rec in records:
            tracker.on_candidate(rec)
        fed_s = time.perf_counter() - t0
        assert fed_s < 5, f"the search waited for the store ({fed_s:.1f} s for {N} candidates)"
        assert len(ops) == 2 and len(tracker.sync.in_flight) == 2  # 12 flushes, 2 batches: the bound
        assert tracker.pending == N and len(load_state(tracker.spool.path).records) == N
        from ray import cloudpickle

        copy = cloudpickle.loads(cloudpickle.dumps(tracker))  # in-flight batches do not travel
        assert len(copy.sync.in_flight) == 0 and copy.sync.suspect and copy.sync.sent == copy.sync.acked == 0
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    _end(tracker, records)
    assert tracker.pending == 0 and not tracker.spool.path.exists() and len(tracker.sync.in_flight) == 0
    assert len(ops) > 2  # the rest went out once the oldest batches were done
    assert_every_candidate_once(MlflowClient(uri), tracker.run_id, N)


def test_an_outage_with_batches_in_flight_loses_nothing_and_logs_nothing_twice(search, tmp_path, capfd):
    """A real ``mlflow server`` stops after 20 candidates; the next batches fail in MLflow's background
    threads (quick HTTP limits held for them: a refused connection, at once); the tracker says so once,
    backs off, and when the server is back on the same store it sends only what the server lacks."""
    r, records = search
    store = tmp_path / "store"
    uri, port, err = fresh_sqlite_uri(store), free_port(), io.StringIO()
    with open(tmp_path / "server.log", "ab") as log:
        first = MlflowServer(uri, port, artifacts_dir=store / "mlruns", log=log).start()
        second = MlflowServer(uri, port, artifacts_dir=store / "mlruns", log=log)
        try:
            tracker = _tracker(first.url, tmp_path, stream=err, backoff=Backoff(base_s=0.2, max_s=0.2))
            tracker.on_start({"recipe": r})
            for rec in records[:20]:
                tracker.on_candidate(rec)
            first.stop()
            t0 = time.perf_counter()
            for rec in records[20:40]:
                tracker.on_candidate(rec)
            _wait(lambda: all(done(sent.op) for sent in tracker.sync.in_flight), "the failed batches")
            tracker.flush()  # the next flush finds them failed
            assert time.perf_counter() - t0 < 10 and tracker.outages == 1 and tracker.pending >= 20
            second.start()
            time.sleep(0.3)  # the backoff's wait
            for rec in records[40:]:
                tracker.on_candidate(rec)
            _end(tracker, records)
            client = MlflowClient(second.url)
            assert_every_candidate_once(client, tracker.run_id, N)
            assert client.get_run(tracker.run_id).info.status == "FINISHED"
        finally:
            first.stop()
            second.stop()
    said = err.getvalue()
    assert said.count("cannot be reached") == 1 and "server back after" in said, said
    assert tracker.pending == 0 and not tracker.spool.path.exists()
    assert "Failed to log run data" not in capfd.readouterr().err  # MLflow's own line per failed batch


def test_reconcile_sends_a_batch_missing_between_landed_ones(search, tmp_path):
    """Background batches land out of order: after a failure the server may hold candidates 0-9 and
    15-19 but not 10-14. The reconcile reads every step, so 10-14 are sent (a "highest step" rule would
    have skipped them) and nothing is sent twice."""
    _, records = search
    uri = fresh_sqlite_uri(tmp_path)
    client = MlflowClient(uri)
    state = TrackingState(RunSpec(spool_id="gap", tracking_uri=uri, experiment="gap", artifact_location=None,
                                  run_name="r", tags={}, params={}, recipe_yaml="name: x\n", plots=False))
    for rec in records[:20]:
        state.add(rec)
    RunSync(client, TrackingState(state.spec)).sync()  # the run, without candidates
    run_id = client.search_runs([client.get_experiment_by_name("gap").experiment_id])[0].info.run_id
    landed = [Metric(k, v, 0, rec.index) for rec, best in zip(state.records, state.best_so_far)
              if not 10 <= rec.index < 15 for k, v in candidate_metrics(rec, best, state.spec.metric).items()]
    client.log_batch(run_id, metrics=landed)
    state.run_id = run_id
    sync = RunSync(client, state, reconcile=True)
    sync.sync()
    assert sync.pending == 0
    assert_every_candidate_once(client, run_id, 20)


def test_merged_background_batches_are_not_trusted(search, tmp_path, monkeypatch):
    """With ``MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS`` MLflow merges queued batches and reports a failure
    to the first only: the tracker then logs synchronously (each flush lands before it returns)."""
    r, records = search
    monkeypatch.setenv(BUFFERING_ENV, "1")
    uri = fresh_sqlite_uri(tmp_path)
    tracker = _tracker(uri, tmp_path)
    tracker.on_start({"recipe": r})
    ops = _async_calls(tracker, monkeypatch)
    for rec in records[:10]:
        tracker.on_candidate(rec)
    assert tracker.pending == 0 and not ops and len(tracker.sync.in_flight) == 0
    _end(tracker, records[:10])
    assert_every_candidate_once(MlflowClient(uri), tracker.run_id, 10)
