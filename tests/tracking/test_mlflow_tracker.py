"""MLflow tracker on a real sqlite store: every candidate, in batches, with lineage and a parquet table."""
from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from mlflow.tracking import MlflowClient

from raynas.runtime import build_search
from raynas.tracking import MlflowTracker
from tests.runtime.helpers import Collector, recipe


@pytest.fixture(scope="module")
def tracked(nb201_path, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    tracker = MlflowTracker(uri, batch_size=25, flush_interval_s=3600)
    col = Collector()
    summary = build_search(recipe(nb201_path, "budget.sim_seconds=12000"), [tracker, col]).run()
    return MlflowClient(uri), tracker, col, summary


def test_run_holds_every_candidate_once(tracked):
    client, tracker, col, summary = tracked
    history = client.get_metric_history(tracker.run_id, "candidate/valid_acc")
    assert sorted(m.step for m in history) == list(range(summary.num_candidates)) == [r.index for r in col.records]
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == [r.metrics["valid_acc"] for r in col.records]
    for key in ("candidate/test_acc", "candidate/cost_s", "candidate/sim_time_s", "best_so_far/valid_acc"):
        assert len(client.get_metric_history(tracker.run_id, key)) == summary.num_candidates


def test_candidates_table_and_batches(tracked, tmp_path):
    client, tracker, col, summary = tracked
    path = client.download_artifacts(tracker.run_id, "candidates.parquet", str(tmp_path))
    table = pq.read_table(path).to_pylist()
    assert len(table) == summary.num_candidates
    row = table[-1]
    rec = col.records[-1]
    assert (row["arch"], row["canonical"], row["parent"], row["variation"]) == \
        (rec.arch, rec.canonical, rec.parent, rec.variation)
    assert row["sim_end_s"] == rec.sim_end_s and row["test_acc"] == rec.hidden["test_acc"]
    parts = client.list_artifacts(tracker.run_id, "candidates")
    assert len(parts) == -(-summary.num_candidates // 25)  # batches of 25: one part per flush


def test_recipe_params_and_summary(tracked, tmp_path):
    client, tracker, col, summary = tracked
    run = client.get_run(tracker.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["strategy.name"] == "rea" and run.data.params["budget.sim_seconds"] == "12000.0"
    assert run.data.tags["raynas.best_arch"] == summary.best.arch
    assert "raynas.version.ray" in run.data.tags
    m = run.data.metrics
    assert m["num_candidates"] == summary.num_candidates
    assert m["best_valid_acc"] == summary.best.metrics["valid_acc"]
    assert m["regret_test_acc"] == pytest.approx(94.3733 - summary.best.hidden["test_acc"])
    recipe_text = open(client.download_artifacts(tracker.run_id, "recipe.yaml", str(tmp_path))).read()
    assert "population_size: 10" in recipe_text


def test_failed_search_marks_the_run_failed_and_keeps_what_was_logged(nb201_path, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = MlflowTracker(uri, batch_size=5, flush_interval_s=3600)

    class Boom:
        def on_start(self, info): pass
        def on_candidate(self, record):
            if record.index == 12:
                raise RuntimeError("boom")
        def on_end(self, summary): pass

    with pytest.raises(RuntimeError, match="boom"):
        build_search(recipe(nb201_path), [tracker, Boom()]).run()
    client = MlflowClient(uri)
    assert client.get_run(tracker.run_id).info.status == "FAILED"
    assert len(client.get_metric_history(tracker.run_id, "candidate/valid_acc")) == 13
