"""Faults on a real two-node Ray cluster (``ray.cluster_utils.Cluster``: a head and a worker node, two
CPUs each, on this machine):
  * the driver killed with SIGKILL mid-search, then ``raynas resume`` finishes it in the same MLflow run
    with no candidate lost or logged twice;
  * the worker node, holding a replica of the supernet pool (replicas are spread over the nodes), removed
    mid-search: the search finishes and every candidate is in MLflow once (runs last: the node is gone)."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from mlflow.tracking import MlflowClient

from raynas.runtime.records import TUNE_EXPERIMENT
from raynas.tracking.spool import load_state, run_of, spool_files
from tests.clusters.two_nodes import two_nodes

N = 120  # candidates the search's budget asks for
DELAY_S = 0.1  # evaluator.wall_delay_s: real seconds per evaluation, so the search lasts ~10 s
KILL_AFTER = 30  # candidates spooled (counted by the search) before the driver is killed
EXPERIMENT = "resume-after-sigkill"


@pytest.fixture(scope="module", name="two_nodes")
def two_nodes_fixture():
    with two_nodes(cpus_per_node=2) as nodes:
        yield nodes


def _recipe(path: Path, nb201_path: str) -> Path:
    recipe = {"name": EXPERIMENT, "seed": 2, "space": {"name": "nb201"},
              "evaluator": {"name": "tabular", "data_path": nb201_path, "wall_delay_s": DELAY_S},
              "strategy": {"name": "rea", "population_size": 10, "sample_size": 3, "dedup": "function"},
              "budget": {"max_candidates": N}, "backend": {"name": "tune", "workers": 3, "cpus_per_worker": 1},
              "tracking": {"batch_size": 5, "flush_interval_s": 0.5}}
    path.write_text(yaml.safe_dump(recipe))
    return path


def _raynas(*args: str) -> list[str]:
    return [sys.executable, "-m", "raynas", *args]


def _wait(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _spooled(work: Path) -> int:
    spools = spool_files(work / ".raynas" / "spool")
    return len(load_state(spools[0]).records) if spools else 0


def _searcher_saved(work: Path) -> bool:
    """Tune has written an experiment snapshot with the Searcher's state (what a restore starts from)."""
    return any(work.glob(".raynas/tune/*/searcher-state-*.pkl"))


@pytest.mark.timeout(300)
def test_sigkilled_driver_resumes_with_nothing_lost_or_logged_twice(two_nodes, nb201_path, tmp_path):
    work, address = tmp_path, two_nodes[0].address
    recipe = _recipe(work / "recipe.yaml", nb201_path)
    env = {**os.environ, "TUNE_GLOBAL_CHECKPOINT_S": "1"}  # snapshot often, so the kill lands between two
    driver = subprocess.Popen(_raynas("run", str(recipe), "--address", address, "--quiet"),
                              cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait(lambda: _spooled(work) >= KILL_AFTER and _searcher_saved(work), 120, "candidates and a snapshot")
    finally:
        driver.send_signal(signal.SIGKILL)
        _, err = driver.communicate(timeout=30)
    assert driver.returncode == -signal.SIGKILL, err[-2000:]
    (spool,) = spool_files(work / ".raynas" / "spool")
    before = load_state(shutil.copy(spool, work / "before.jsonl")).records
    run_id = run_of(spool)
    assert KILL_AFTER <= len(before) < N and run_id

    resumed = subprocess.run(_raynas("resume", run_id, "--address", address, "--quiet"),
                             cwd=work, env=env, capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Resuming MLflow run {run_id}: {len(before)} candidates logged" in resumed.stdout

    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    run = client.get_run(run_id)
    (only,) = client.search_runs([run.info.experiment_id])  # the same run: no second one
    assert only.info.run_id == run_id and run.info.status == "FINISHED"
    assert Path(run.data.tags[TUNE_EXPERIMENT]).parent == (work / ".raynas" / "tune").resolve()
    steps = [m.step for m in client.get_metric_history(run_id, "candidate/valid_acc")]
    assert sorted(steps) == list(range(len(steps))) and len(steps) >= N  # once each, the budget reached
    table = pq.read_table(client.download_artifacts(run_id, "candidates.parquet", str(tmp_path))).to_pandas()
    assert len(table) == len(steps) and table["candidate_id"].is_unique  # 0 duplicated
    by_index = table.set_index("index")
    for rec in before:  # 0 lost: every candidate counted before the kill, where it was
        assert (by_index.loc[rec.index, "candidate_id"], by_index.loc[rec.index, "arch"]) == (rec.candidate_id,
                                                                                               rec.arch)
    assert run.data.metrics["num_candidates"] == len(steps)
    assert not spool_files(work / ".raynas" / "spool")  # MLflow holds everything: the spool is gone


class RemoveNode:
    """A listener that removes ``node`` from ``cluster`` once ``at`` candidates are in, noting where the
    pool's replicas ran just before."""

    def __init__(self, cluster, node, evaluator, at: int) -> None:
        self.cluster, self.node, self.evaluator, self.at = cluster, node, evaluator, at
        self.replica_nodes: list[str] = []

    def on_start(self, info):
        pass

    def on_candidate(self, record):
        import ray

        if record.index == self.at:
            handles = self.evaluator.pool.replica_handles()
            self.replica_nodes = [info["node_id"] for info in ray.get([h.info.remote() for h in handles])]
            self.cluster.remove_node(self.node)

    def on_end(self, summary):
        pass


@pytest.mark.timeout(300)
def test_a_worker_node_lost_mid_search_loses_no_candidate(two_nodes, tmp_path):
    import ray

    from raynas.recipes import parse_recipe
    from raynas.recipes.schema import TrackingSpec
    from raynas.runtime import build_search
    from raynas.tracking import MlflowTracker
    from tests.serving.helpers import TINY_MBV3, TRAIN

    cluster, worker = two_nodes
    n = 24
    recipe = parse_recipe({
        "name": "node-lost", "seed": 0, "space": {"name": "mbv3", **TINY_MBV3},
        "evaluator": {"name": "supernet", "sampling": "uniform", "train": TRAIN, "weights_dir": str(tmp_path / "w"),
                      "pool": {"replicas": 2, "num_cpus": 0.5, "prepare_num_cpus": 0.5, "archs_per_call": 1}},
        "strategy": {"name": "rea", "population_size": 40, "sample_size": 3},
        "budget": {"max_candidates": n},
        "backend": {"name": "tune", "workers": 2, "cpus_per_worker": 0.25, "max_failures": 3,
                    "storage_path": str(tmp_path / "tune")},
        "ray": {"address": cluster.address}})
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = MlflowTracker(TrackingSpec(uri, batch_size=4, plots=False, spool_dir=str(tmp_path / "spool")))
    search = build_search(recipe, [tracker])
    chaos = RemoveNode(cluster, worker, search.evaluator, at=6)
    search.driver.listeners.append(chaos)
    try:
        summary = search.run()
        stats = search.evaluator.pool.stats()
    finally:
        search.evaluator.close()
        ray.shutdown()
    assert worker.node_id in chaos.replica_nodes and len(set(chaos.replica_nodes)) == 2  # spread, one there
    assert stats["restarts"] >= 1  # its replica was replaced on the head
    assert summary.num_candidates == n and summary.num_failed == 0
    client = MlflowClient(uri)
    steps = sorted(m.step for m in client.get_metric_history(tracker.run_id, "candidate/valid_acc"))
    assert steps == list(range(n))
    table = pq.read_table(client.download_artifacts(tracker.run_id, "candidates.parquet", str(tmp_path))).to_pandas()
    assert len(table) == n and table["candidate_id"].is_unique
