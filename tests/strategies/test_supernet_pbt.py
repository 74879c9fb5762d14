"""Population-based training of a tiny elastic supernet on digits with Tune's PBT (real Ray, real torch)."""
from __future__ import annotations

import numpy as np
import pytest

from raynas.strategies.supernet_pbt import PBT_METRIC, PBTConfig, run_pbt
from raynas.supernet.weights import weights_version
from tests.supernet.conftest import TINY_MBV3


@pytest.mark.timeout(300)
def test_pbt_exploits_and_returns_the_best_members_weights(ray_local, tmp_path):
    trial = {"space": "mbv3", "space_config": TINY_MBV3, "sampling": "sandwich", "dataset": "digits",
             "train": {"epochs": 3, "batch_size": 128, "num_threads": 1, "device": "cpu"}}
    pbt = PBTConfig(population=2, perturbation_interval=1, quantile_fraction=0.5, seed=3)
    result = run_pbt(trial, pbt, tmp_path / "tune")
    # an exploited member's result log restarts at its restore point, so only the length is checked
    assert len(result.histories) == 2 and all(len(h) >= 1 for h in result.histories)
    assert result.num_exploits >= 1  # with 2 members and quantile 0.5 the worse one copies the better
    assert result.best_metrics["epoch"] == 3
    assert result.best_metrics[PBT_METRIC] == max(h[-1][PBT_METRIC] for h in result.histories)
    assert weights_version(result.best_weights) == result.best_metrics["weights_version"]
    assert all(np.isfinite(a).all() for a in result.best_weights.values())
    lrs = {round(h[-1]["config/train/lr"], 8) for h in result.histories if "config/train/lr" in h[-1]}
    assert lrs and all(pbt.lr_min * 0.8 - 1e-9 <= lr <= pbt.lr_max * 1.2 + 1e-9 for lr in lrs)


@pytest.mark.timeout(300)
def test_supernet_evaluator_serves_the_best_pbt_member(ray_local, tmp_path):
    from raynas.evaluators.supernet import SupernetEvaluator
    from raynas.space.mbv3 import MBV3Space
    from raynas.supernet.weights import load_npz

    space = MBV3Space(MBV3Space.Config(**TINY_MBV3))
    config = SupernetEvaluator.Config(
        supernet="mbv3", dataset="digits", sampling="sandwich", weights_dir=str(tmp_path / "w"),
        train={"epochs": 2, "batch_size": 128, "device": "cpu"}, replicas=1, num_cpus=0.5, train_num_cpus=0.5,
        pbt=PBTConfig(population=2, perturbation_interval=1, quantile_fraction=0.5, cpus_per_member=0.5))
    evaluator = SupernetEvaluator(space, config)
    try:
        results = evaluator.evaluate([space.largest(), space.smallest()])
        (path,) = (tmp_path / "w").glob("pbt-*.npz")
        assert {r.tags["weights_version"] for r in results} == {weights_version(load_npz(path))}
        assert all(0 <= r.metrics["valid_acc"] <= 100 for r in results)
    finally:
        evaluator.close()
