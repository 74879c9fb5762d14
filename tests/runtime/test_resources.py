"""Resources the Ray cluster cannot provide fail at start, naming the recipe field and what the cluster
has (issue 11) — instead of Ray waiting for them forever. Per node: two 1-CPU nodes cannot hold a
2-CPU trial (a real two-node ``Cluster``)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from raynas.errors import RecipeError
from raynas.ray_env import RAY_CPU, RAY_GPU, Demand, check_resources
from tests.clusters.two_nodes import two_nodes

REPO = Path(__file__).resolve().parents[2]
TRIAL = Demand("each Tune trial", {RAY_CPU: 1.0, RAY_GPU: 0.0},
               {RAY_CPU: "backend.cpus_per_worker", RAY_GPU: "backend.gpus_per_worker"})
ONE_NODE = [{RAY_CPU: 2.0, "memory": 1e9}]


def test_a_bundle_that_fits_a_node_passes():
    check_resources([TRIAL], ONE_NODE)
    check_resources([Demand("x", {RAY_CPU: 2.0, RAY_GPU: 1.0}, {RAY_CPU: "a", RAY_GPU: "b"})],
                    [{RAY_CPU: 1.0}, {RAY_CPU: 4.0, RAY_GPU: 1.0}])


@pytest.mark.parametrize("amounts,field,has", [
    ({RAY_CPU: 1.0, RAY_GPU: 1.0}, "backend.gpus_per_worker", "largest has 0 GPU"),
    ({RAY_CPU: 64.0, RAY_GPU: 0.0}, "backend.cpus_per_worker", "largest has 2 CPU"),
])
def test_a_bundle_no_node_can_hold_names_its_field_and_the_cluster(amounts, field, has):
    demand = Demand(TRIAL.what, amounts, TRIAL.fields)
    with pytest.raises(RecipeError) as err:
        check_resources([demand], ONE_NODE)
    assert err.value.field == field and has in str(err.value) and "1 node, 2 CPUs, 0 GPUs in all" in str(err.value)


def test_per_node_on_a_real_two_node_cluster():
    import ray

    with two_nodes(cpus_per_node=1) as (cluster, _):
        ray.init(address=cluster.address, include_dashboard=False, logging_level="WARNING")
        try:
            check_resources([TRIAL])  # 1 CPU: fits either node
            with pytest.raises(RecipeError, match=r"^backend.cpus_per_worker: .*2 nodes, 2 CPUs"):
                check_resources([Demand(TRIAL.what, {RAY_CPU: 2.0}, TRIAL.fields)])  # 2 in all, 1 per node
        finally:
            ray.shutdown()


def _run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "raynas", "run", *args, "--quiet"], capture_output=True, text=True,
                          cwd=cwd, timeout=180)


@pytest.mark.parametrize("recipe,override,field", [
    ("quickstart.yaml", "backend.gpus_per_worker=1", "backend.gpus_per_worker"),
    ("quickstart.yaml", "backend.cpus_per_worker=64", "backend.cpus_per_worker"),
    ("mbv3-digits-rea.yaml", "evaluator.pool.num_gpus=1", "evaluator.pool.num_gpus"),
])
def test_raynas_run_fails_at_start_with_one_line(tmp_path, nb201_path, recipe, override, field):
    extra = ["--set", "backend.name=tune"] if recipe == "quickstart.yaml" else []
    data = ["--set", f"evaluator.data_path={nb201_path}"] if recipe == "quickstart.yaml" else []
    proc = _run(str(REPO / "recipes" / recipe), *extra, *data, "--set", override, "--set", "ray.num_cpus=2",
                cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("raynas:")]
    assert lines == [ln for ln in lines if ln.startswith(f"raynas: error: {field}: ")] and len(lines) == 1
    assert "Traceback" not in proc.stderr and "largest has" in lines[0]
    assert not (tmp_path / "mlflow.db").exists()  # nothing started: no run to mark failed
