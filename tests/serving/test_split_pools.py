"""Serving a split tree on a real local Ray: one pool per sub-supernet, each with its own weights.

Every arch is answered by the pool of the leaf whose sub-space holds it (its weights version, its
``sub_supernet``), only that pool computes it, and a repeated request is served from that pool's cache."""
from __future__ import annotations

import numpy as np
import pytest

from raynas.serving import PoolConfig, build_model
from raynas.serving.spec import ModelSpec
from raynas.serving.split import SUB_SUPERNET, SplitPools, SplitServing
from raynas.space.splits import SplitTree
from raynas.supernet.weights import save_npz, to_numpy, weights_version

SPEC = ModelSpec.for_training(train_seed=0, train_batch_size=64, calib_batches=2, space="nb201", supernet="nb201",
                              supernet_config={"channels": 4}, dataset="shapes",
                              dataset_config={"train_size": 256, "val_size": 128, "test_size": 128})


@pytest.fixture(scope="module")
def pools(ray_local, tmp_path_factory):
    tree = SplitTree(6, 5)
    tree.split("root", 0, [[0, 1], [2], [3, 4]])
    leaves, versions = {}, {}
    for i, leaf in enumerate(tree.leaves()):
        _, model = build_model(ModelSpec(**{**SPEC.__dict__, "supernet_config": {"channels": 4, "seed": i}}))
        arrays = to_numpy(model)
        path = tmp_path_factory.mktemp("leaves") / f"{i}.npz"
        save_npz(path, arrays)
        leaves[leaf.id], versions[leaf.id] = str(path), weights_version(arrays)
    space = SPEC.build_space()
    pools = SplitPools.create(SplitServing(tree, leaves, {}), SPEC, PoolConfig(num_cpus=0.25, prepare_num_cpus=0.25),
                              "test-split", space.from_str)
    yield tree, space, pools, versions
    pools.shutdown()


def test_each_arch_is_scored_by_the_sub_supernet_that_holds_it(pools):
    tree, space, pools, versions = pools
    assert pools.ready() == versions and len(set(versions.values())) == 3
    archs = [space.sample(np.random.default_rng(s)) for s in range(12)]
    replies = pools.evaluate([(space.to_str(a), space.canonical(a)) for a in archs])
    for arch, reply in zip(archs, replies):
        leaf = tree.route(arch)
        assert reply[SUB_SUPERNET] == leaf and reply["version"] == versions[leaf] and not reply["cached"]
    computed = {leaf: stats["cache"]["misses"] for leaf, stats in pools.stats().items()}
    assert computed == {leaf: sum(tree.route(a) == leaf for a in archs) for leaf in versions}
    again = pools.evaluate([(space.to_str(a), space.canonical(a)) for a in archs])
    assert all(r["cached"] for r in again)
    assert [r["valid_acc"] for r in again] == [r["valid_acc"] for r in replies]


def test_a_pool_per_leaf_is_required(pools):
    tree, space, pools, _ = pools
    with pytest.raises(ValueError, match="no pool for sub-supernets"):
        SplitPools(tree, dict(list(pools.pools.items())[:1]), space.from_str)
