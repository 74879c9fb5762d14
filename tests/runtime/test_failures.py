"""Failing evaluations end a search loudly (issue 11): counted, recorded with their error, retried by
``backend.max_failures`` (Tune's FailureConfig), and a search that stops on them is FAILED — on both
backends, and through ``raynas run`` (exit 1, one line saying why, MLflow holding the failed rows)."""
from __future__ import annotations

import json

import pytest

from raynas.metrics import FAILED, FINISHED
from raynas.runtime import build_search
from tests.runtime.faulty import EXPLODED, FAULTY
from tests.runtime.helpers import Collector, recipe

MAX_FAILED = "more than budget.max_failed"


def faulty_recipe(nb201_path, *overrides):
    return recipe(nb201_path, f"evaluator.name={FAULTY}", *overrides)


def run(r):
    col = Collector()
    col.failures = []
    col.on_failure = col.failures.append
    summary = build_search(r, [col]).run()
    return summary, col


def assert_no_duplicates(summary, col, issued):
    ids = [r.candidate_id for r in col.records] + [f.candidate_id for f in col.failures]
    assert len(ids) == len(set(ids)) == issued
    assert summary.num_candidates == len(col.records) and summary.num_failed == len(col.failures)
    assert summary.failures == col.failures


@pytest.mark.parametrize("budget", ["budget={sim_seconds: 3000}", "budget={max_candidates: 40}"])
def test_an_always_failing_evaluator_stops_the_search_simulated(nb201_path, faulty_evaluator, budget):
    summary, col = run(faulty_recipe(nb201_path, budget, "budget.max_failed=4"))
    assert summary.status == FAILED and not col.records and len(col.failures) == 5
    assert summary.stop_reason.startswith(f"5 candidates failed, {MAX_FAILED} (4); first error: {EXPLODED}")
    assert all(f.error.startswith(EXPLODED) and "\n" not in f.error for f in col.failures)


def test_every_candidate_failing_under_max_failed_is_still_a_failed_search(nb201_path, faulty_evaluator):
    summary, col = run(faulty_recipe(nb201_path, "budget={max_candidates: 3}"))
    assert summary.status == FAILED and summary.num_failed == 3
    assert summary.stop_reason.startswith(f"every candidate failed (3); first error: {EXPLODED}")


def test_one_in_five_failing_completes_with_failures_counted_simulated(nb201_path, faulty_evaluator):
    summary, col = run(faulty_recipe(nb201_path, "evaluator.fail_every=5", "budget={max_candidates: 60, "
                                     "max_failed: 60}", "backend.candidates_per_trial=1"))
    assert summary.status == FINISHED and summary.stop_reason is None
    assert 0 < summary.num_failed < 30 and col.records
    assert_no_duplicates(summary, col, 60)
    space = build_search(faulty_recipe(nb201_path)).space
    ev = faulty_evaluator(space, faulty_evaluator.Config(data_path=nb201_path, fail_every=5))
    assert all(ev.fails(space.from_str(f.arch)) for f in col.failures)
    assert not any(ev.fails(space.from_str(r.arch)) for r in col.records)


def test_max_failures_retries_a_flaky_trial_simulated(nb201_path, faulty_evaluator, tmp_path):
    flaky = f"evaluator.flaky_dir={tmp_path}"
    summary, col = run(faulty_recipe(nb201_path, flaky, "budget={max_candidates: 8}", "backend.max_failures=1"))
    assert summary.status == FINISHED and summary.num_failed == 0 and len(col.records) == 8


TUNE = ("backend.name=tune", "backend.workers=2", "backend.cpus_per_worker=0.5")


@pytest.mark.usefixtures("ray_local")
class TestOnTune:
    def test_an_always_failing_evaluator_stops_a_clock_only_search(self, nb201_path, faulty_evaluator, tmp_path):
        summary, col = run(faulty_recipe(nb201_path, *TUNE, f"backend.storage_path={tmp_path}",
                                         "budget={sim_seconds: 3000, max_failed: 3}"))
        assert summary.status == FAILED and not col.records and 4 <= len(col.failures) <= 5  # 2 in flight
        assert MAX_FAILED in summary.stop_reason
        assert all(f.error.startswith(EXPLODED) and "\n" not in f.error for f in col.failures)

    def test_one_in_five_failing_completes_with_failures_counted(self, nb201_path, faulty_evaluator, tmp_path):
        summary, col = run(faulty_recipe(nb201_path, *TUNE, f"backend.storage_path={tmp_path}",
                                         "evaluator.fail_every=5", "budget={max_candidates: 30, max_failed: 30}",
                                         "backend.candidates_per_trial=3"))
        assert summary.status == FINISHED and summary.num_failed > 0 and col.records
        assert summary.num_failed % 3 == 0  # a failed trial fails its whole batch
        assert_no_duplicates(summary, col, 30)
        assert all(f.error.startswith(EXPLODED) for f in col.failures)

    def test_max_failures_retries_a_flaky_trial(self, nb201_path, faulty_evaluator, tmp_path):
        flaky = f"evaluator.flaky_dir={tmp_path}"
        summary, col = run(faulty_recipe(nb201_path, *TUNE, f"backend.storage_path={tmp_path / 'tune'}", flaky,
                                         "budget={max_candidates: 6}", "backend.max_failures=1"))
        assert summary.status == FINISHED and summary.num_failed == 0 and len(col.records) == 6
        assert len(list(tmp_path.glob("[0-9]*"))) == 6  # every arch failed once, then passed on its retry


def test_raynas_run_stopped_on_failures_exits_1_saying_why(nb201_path, faulty_evaluator, tmp_path, capsys,
                                                            monkeypatch):
    """Through the CLI: one line on stderr, failures printed, MLflow holds num_failed, the failed rows
    (with the error's first line), the stop reason and status FAILED."""
    import yaml
    from mlflow.tracking import MlflowClient

    from raynas.cli import main
    from tests.runtime.helpers import BASE

    monkeypatch.chdir(tmp_path)
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({**BASE, "evaluator": {"name": FAULTY, "data_path": nb201_path},
                                    "budget": {"sim_seconds": 3000, "max_failed": 2}}))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["run", str(path), "--quiet", "--tracking-uri", uri]) == 1
    out, err = capsys.readouterr()
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"raynas: error: search stopped: 3 candidates failed, {MAX_FAILED} (2)")
    assert "3 candidates failed:" in out and "× RuntimeError: evaluator exploded on row" in out
    client = MlflowClient(uri)
    (run_,) = client.search_runs([client.get_experiment_by_name(BASE["name"]).experiment_id])
    assert run_.info.status == FAILED and run_.data.metrics["num_failed"] == 3
    assert MAX_FAILED in run_.data.tags["raynas.stop_reason"]
    table = json.load(open(client.download_artifacts(run_.info.run_id, "candidates.json", str(tmp_path))))
    rows = [dict(zip(table["columns"], r)) for r in table["data"]]
    assert [r["status"] for r in rows] == ["failed"] * 3
    assert all(r["error"].startswith(EXPLODED) for r in rows)


LOST = "ActorDiedError: The actor died unexpectedly before finishing this task."


def test_a_lost_trials_candidates_are_proposed_again_then_fail(nb201_path):
    """A trial lost with its worker (Ray's actor/node death) comes back as the same candidates in a new
    trial, ``requeue_lost`` times each; an evaluation error, or a loss beyond that, fails them. While
    the budget is spent but a trial is running, the driver waits rather than finishing."""
    from ray.tune.search import Searcher

    driver = build_search(recipe(nb201_path, "budget={max_candidates: 2}", "backend={name: tune, workers: 2, "
                                 "max_failures: 1}")).driver  # requeue_lost: backend.max_failures
    first = driver.suggest("t1")["candidates"]
    driver.suggest("t2")
    assert driver.suggest("t3") is None  # budget issued, trials running: wait
    driver.on_trial_complete("t1", error=True)
    driver.trial_error("t1", LOST)
    assert driver.summary.num_failed == 0 and driver.requeued == first
    assert driver.suggest("t4")["candidates"] == first  # the same ids, again
    driver.on_trial_complete("t4", error=True)
    driver.trial_error("t4", LOST)  # lost a second time: more than requeue_lost
    driver.on_trial_complete("t2", error=True)
    driver.trial_error("t2", "RuntimeError: boom")  # not a loss
    assert driver.summary.num_failed == 2 and not driver.requeued
    assert [f.candidate_id for f in driver.summary.failures] == [first[0]["id"], "t2/0"]
    assert driver.suggest("t5") == Searcher.FINISHED
