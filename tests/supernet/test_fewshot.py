"""Few-shot split training on a real Ray Tune (issue 12): the exhaustive split of edge 0 makes 5 child
trials that start from the parent's weights exactly, on sub-spaces partitioning the root's; on a
two-node cluster (issue 13), a child whose process is SIGKILLed mid-training resumes from its last
checkpoint, not from the start; GM splits the edge and cut gradient matching picks."""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest
from ray import cloudpickle

from raynas.space.nb201 import EDGES, NB201Space
from raynas.space.splits import ROOT
from raynas.storage import local_copy
from raynas.supernet.fewshot import (
    DONE,
    INHERITED,
    NODE,
    NODE_DIR,
    RESUMED_FROM,
    START_VERSION,
    SplitConfig,
    run_split,
    run_split_trial,
)
from tests.clusters.two_nodes import two_nodes

# a small procedural dataset (4 batches an epoch): the trials' hand-overs are what is tested, not learning
TRIAL = {"space": "nb201", "supernet": "nb201", "supernet_config": {"channels": 4}, "sampling": "uniform",
         "dataset": "shapes", "dataset_config": {"train_size": 256, "val_size": 128, "test_size": 128},
         "train": {"epochs": 3, "batch_size": 64, "lr": 0.05, "num_threads": 1, "seed": 0}}
VICTIM = "root/e0=3"


def flaky_trainable(config):
    """``split_trainable``, except that the first run of ``VICTIM`` is SIGKILLed right after its first
    epoch's checkpoint reached Tune (a marker file beside the nodes remembers that it was)."""
    from ray import tune

    marker = Path(config["nodes_dir"]).parent / "killed-once"

    def report(metrics, checkpoint=None):
        tune.report(metrics, checkpoint=checkpoint)
        if config[NODE] == VICTIM and DONE not in metrics and not marker.exists():
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)

    run_split_trial(config, report=report, checkpoint=tune.get_checkpoint())


@pytest.fixture(scope="module")
def exhaustive(tmp_path_factory):
    """The exhaustive split trained on a two-node ``Cluster`` (one CPU each: one trial per node)."""
    import ray

    with two_nodes(cpus_per_node=1) as (cluster, _):
        ray.init(address=cluster.address, logging_level="WARNING")
        cloudpickle.register_pickle_by_value(sys.modules[__name__])
        try:
            split = SplitConfig(method="exhaustive", epochs=3, split_epochs=[1], edges=[0], max_concurrent=2,
                                cpus_per_trial=1, max_failures=1)
            # a storage URI, as on a cluster (s3://, gs://): trials hand weights over through it, not a path
            storage = f"file://{tmp_path_factory.mktemp('tune')}"
            return run_split(TRIAL, split, storage, name="fs", trainable=flaky_trainable)
        finally:
            cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
            ray.shutdown()


def test_exhaustive_split_makes_one_child_per_op_partitioning_the_root(exhaustive):
    tree = exhaustive.tree
    leaves = sorted(n.id for n in tree.leaves())
    assert leaves == [f"root/e0={op}" for op in range(5)] and not exhaustive.failed
    assert set(exhaustive.results) == {ROOT, *leaves}
    space = NB201Space()
    for arch in space.enumerate():
        assert sum(tree.nodes[leaf].space.contains(arch) for leaf in leaves) == 1
    assert exhaustive.splits[ROOT] == {"edge": 0, "groups": [[0], [1], [2], [3], [4]]}
    assert all(r[NODE_DIR].startswith("file://") for r in exhaustive.results.values())
    for result in exhaustive.results.values():
        with local_copy(result[NODE_DIR]) as node_dir:
            assert (node_dir / "weights.npz").is_file()
    assert [e["epoch"] for e in exhaustive.curves[ROOT]] == [1]  # per-node training curves, by lineage epoch
    assert all([e["epoch"] for e in exhaustive.curves[leaf]] == [2, 3] for leaf in leaves)


def test_children_start_from_the_parents_final_weights_exactly(exhaustive):
    root = exhaustive.results[ROOT]["weights_version"]
    for leaf in exhaustive.tree.leaves():
        result = exhaustive.results[leaf.id]
        assert result[INHERITED] == root
        if RESUMED_FROM not in result:
            assert result[START_VERSION] == root  # what it trained from, before its first step


def test_a_killed_child_resumes_from_its_checkpoint(exhaustive):
    victim = exhaustive.results[VICTIM]
    assert victim[RESUMED_FROM] == 2  # its first epoch (epoch 2 of the lineage) was kept
    assert victim["epoch"] == 3 and victim[DONE]
    others = [exhaustive.results[n.id] for n in exhaustive.tree.leaves() if n.id != VICTIM]
    assert all(RESUMED_FROM not in r for r in others)


@pytest.mark.usefixtures("ray_local")
def test_gm_split_cuts_the_edge_gradient_matching_picks(tmp_path):
    split = SplitConfig(method="gm", epochs=2, split_epochs=[1], gm_batches=2, max_concurrent=2, cpus_per_trial=1)
    result = run_split({**TRIAL, "train": {**TRIAL["train"], "epochs": 2}}, split, tmp_path, name="gm")
    record = result.splits[ROOT]
    assert sorted(len(g) for g in record["groups"]) == [2, 3] and 0 <= record["edge"] < len(EDGES)
    assert set(record["distances"]) == {str(e) for e in range(len(EDGES))}  # every edge was measured
    best = max(record["distances"], key=lambda e: _score(record["distances"][e]["dist"]))
    assert int(best) == record["edge"]
    assert len(result.tree.leaves()) == 2 and not result.failed


def _score(dist):
    import numpy as np

    from raynas.supernet.gm import best_partition

    return best_partition(np.array(dist)).score


BROKEN = "root/e0=1"


def broken_trainable(config):
    """``split_trainable``, except that ``BROKEN`` dies after its first epoch while a ``broken`` file
    lies beside the experiment's nodes (the "bug" a user then fixes before resuming)."""
    from ray import tune

    def report(metrics, checkpoint=None):
        tune.report(metrics, checkpoint=checkpoint)
        if config[NODE] == BROKEN and DONE not in metrics and (Path(config["nodes_dir"]).parent / "broken").exists():
            raise RuntimeError("broken")

    run_split_trial(config, report=report, checkpoint=tune.get_checkpoint())


@pytest.mark.usefixtures("ray_local")
def test_an_errored_split_experiment_resumes_with_tuner_restore(tmp_path):
    from raynas.supernet.fewshot import resume_split

    marker = tmp_path / "fs" / "broken"
    marker.parent.mkdir(parents=True)
    marker.touch()
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        split = SplitConfig(method="exhaustive", epochs=3, split_epochs=[1], edges=[0], max_concurrent=2,
                            cpus_per_trial=1, max_failures=0)
        first = run_split(TRIAL, split, tmp_path, name="fs", trainable=broken_trainable)
        assert first.failed == [BROKEN] and BROKEN not in first.results and len(first.results) == 5
        marker.unlink()  # fixed
        resumed = resume_split(first.experiment_path, trainable=broken_trainable)
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert resumed.failed == [] and len(resumed.results) == 6
    assert resumed.results[BROKEN][RESUMED_FROM] == 2 and resumed.results[BROKEN]["epoch"] == 3
    assert resumed.results[BROKEN][INHERITED] == resumed.results[ROOT]["weights_version"]
