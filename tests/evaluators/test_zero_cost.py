"""Zero-cost proxies on real untrained NB201 networks and real digits batches."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import spearmanr

from raynas.evaluators.nb201_table import load_table
from raynas.evaluators.zero_cost import PROXIES, ZeroCostEvaluator
from raynas.runtime import build_search
from raynas.space.nb201 import NB201Space
from tests.runtime.helpers import Collector, recipe

SPACE = NB201Space()


@pytest.fixture(scope="module")
def scored(nb201_path):
    table = load_table(nb201_path)
    idx = np.random.default_rng(0).choice(len(table.arch_strs), 48, replace=False)
    archs = [SPACE.from_str(table.arch_strs[i]) for i in idx]
    ev = ZeroCostEvaluator(SPACE, ZeroCostEvaluator.Config(channels=8))
    return ev, archs, ev.evaluate(archs), table.column("c10_test_200")[idx]


def test_every_proxy_is_finite_and_deterministic(scored):
    ev, archs, results, _ = scored
    for res in results:
        assert set(res.metrics) == set(PROXIES) and all(math.isfinite(v) for v in res.metrics.values())
    assert ev.evaluate(archs[:3])[0].metrics == results[0].metrics


def test_synflow_and_naswot_rank_archs_like_the_benchmark(scored):
    _, _, results, acc = scored
    for proxy in ("synflow", "naswot"):
        rho = spearmanr([r.metrics[proxy] for r in results], acc).statistic
        assert rho > 0.4, (proxy, rho)


def test_a_cell_with_no_path_scores_lowest_synflow(scored):
    ev, _, results, _ = scored
    dead = ev.evaluate([SPACE.from_str("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")])[0]
    assert dead.metrics["synflow"] <= min(r.metrics["synflow"] for r in results)


def test_proxy_prefilter_search_uses_the_real_proxy(nb201_path):
    col = Collector()
    r = recipe(nb201_path, "strategy={name: proxy_prefilter, proxy: naswot, screen: 4}",
               "budget.sim_seconds=null", "budget.max_candidates=12")
    search = build_search(r, [col])
    summary = search.run()
    assert summary.num_candidates == 12 and summary.strategy_metrics["proxy_evaluations"] >= 12


def test_zero_cost_recipe_runs_end_to_end(tmp_path):
    """``recipes/nb201-zero-cost.yaml`` from the CLI: REA maximises the first proxy; MLflow has it."""
    import subprocess
    import sys
    from pathlib import Path

    from mlflow.tracking import MlflowClient

    recipe = Path(__file__).resolve().parents[2] / "recipes" / "nb201-zero-cost.yaml"
    proc = subprocess.run([sys.executable, "-m", "raynas", "run", str(recipe), "--set", "budget.max_candidates=12",
                           "--quiet"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Best arch: |" in proc.stdout and "naswot=" in proc.stdout
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("nb201-zero-cost").experiment_id])
    history = client.get_metric_history(run.info.run_id, "candidate/naswot")
    assert run.data.metrics["num_candidates"] == 12 == len(history)
    assert run.data.metrics["best_naswot"] == max(m.value for m in history)
    assert run.data.tags["raynas.metric"] == "naswot" and run.info.status == "FINISHED"
