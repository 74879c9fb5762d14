"""Population-based training of a tiny elastic supernet on digits with Tune's PBT (real Ray, real torch)."""
from __future__ import annotations

import numpy as np
import pytest

from raynas.serving.router import PoolConfig
from raynas.supernet.pbt import PBT_METRIC, PBTConfig, run_pbt
from raynas.supernet.weights import weights_version
from tests.supernet.conftest import TINY_MBV3

TRIAL = {"space": "mbv3", "space_config": TINY_MBV3, "sampling": "sandwich", "dataset": "digits",
         "train": {"epochs": 2, "batch_size": 128, "num_threads": 1, "device": "cpu"}}
PBT = PBTConfig(population=2, perturbation_interval=1, quantile_fraction=0.5, resample_probability=0.5, seed=3)


@pytest.fixture(scope="module")
def pbt_run(ray_local, tmp_path_factory):
    return run_pbt(TRIAL, PBT, tmp_path_factory.mktemp("pbt") / "tune", name="first")


@pytest.mark.timeout(300)
def test_pbt_exploits_and_returns_the_best_members_weights(pbt_run):
    result = pbt_run
    # an exploited member's result log restarts at its restore point, so only the length is checked
    assert len(result.histories) == 2 and all(len(h) >= 1 for h in result.histories)
    assert result.num_exploits >= 1  # with 2 members and quantile 0.5 the worse one copies the better
    assert result.best_metrics["epoch"] == 2
    assert result.best_metrics[PBT_METRIC] == max(h[-1][PBT_METRIC] for h in result.histories)
    assert weights_version(result.best_weights) == result.best_metrics["weights_version"]
    assert all(np.isfinite(a).all() for a in result.best_weights.values())
    lrs = {round(h[-1]["config/train/lr"], 8) for h in result.histories if "config/train/lr" in h[-1]}
    assert lrs and all(PBT.lr_min * 0.8 - 1e-9 <= lr <= PBT.lr_max * 1.2 + 1e-9 for lr in lrs)


@pytest.mark.timeout(300)
def test_pbt_is_reproducible_for_a_seed(pbt_run, tmp_path):
    """Donor choice, perturbations and resampled learning rates all come from ``PBTConfig.seed``."""
    again = run_pbt(TRIAL, PBT, tmp_path / "tune", name="again")
    assert again.num_exploits == pbt_run.num_exploits and again.best_config == pbt_run.best_config
    assert weights_version(again.best_weights) == weights_version(pbt_run.best_weights)


@pytest.mark.timeout(300)
def test_supernet_evaluator_serves_the_best_pbt_member(ray_local, tmp_path):
    from raynas.evaluators.supernet import SupernetEvaluator
    from raynas.space.mbv3 import MBV3Space
    from raynas.supernet.weights import load_npz

    space = MBV3Space(MBV3Space.Config(**TINY_MBV3))
    config = SupernetEvaluator.Config(
        supernet="mbv3", dataset="digits", sampling="sandwich", weights_dir=str(tmp_path / "w"),
        train={"epochs": 2, "batch_size": 128, "device": "cpu"},
        pool=PoolConfig(replicas=1, num_cpus=0.5, prepare_num_cpus=0.5),
        pbt={"population": 2, "perturbation_interval": 1, "quantile_fraction": 0.5, "cpus_per_member": 0.5,
             "reuse_actors": True})  # faster; reproducibility is the test above's
    evaluator = SupernetEvaluator(space, config)
    try:
        results = evaluator.evaluate([space.largest(), space.smallest()])
        (path,) = (tmp_path / "w").glob("pbt-*.npz")
        assert {r.tags["weights_version"] for r in results} == {weights_version(load_npz(path))}
        assert all(0 <= r.metrics["valid_acc"] <= 100 for r in results)
    finally:
        evaluator.close()


