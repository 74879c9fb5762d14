"""``train.workers`` in recipes: the supernet evaluator declares a Ray bundle per data-parallel worker
(so a worker no node holds is a one-line error at start, naming the field), checks the batch rule, and
hands the training to Ray Train with the backend's storage; the weights' cache key ignores where the
Ray Train run is stored."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from raynas.errors import RecipeError
from raynas.evaluators.supernet import SupernetEvaluator
from raynas.ray_env import RAY_CPU, RAY_GPU, check_resources
from raynas.recipes import load_recipe
from raynas.serving.sources import DDP_DIR, TrainedWeights

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "mbv3-digits-ddp.yaml"
TWO_CPUS = [{RAY_CPU: 2.0}]


def evaluator(*overrides: str, storage_path: str | None = None) -> SupernetEvaluator:
    recipe = load_recipe(RECIPE, list(overrides))
    return SupernetEvaluator(recipe.space.impl(recipe.space.config), recipe.evaluator.config,
                             storage_path=storage_path)


def test_each_worker_is_a_demand_naming_its_fields():
    (demand,) = [d for d in evaluator().resources() if "data-parallel" in d.what]
    assert demand.amounts == {RAY_CPU: 0.6, RAY_GPU: 0.0}
    assert demand.fields == {RAY_CPU: "evaluator.train.cpus_per_worker", RAY_GPU: "evaluator.train.gpus_per_worker"}
    check_resources(evaluator().resources(), TWO_CPUS)  # the recipe fits 2 CPUs
    with pytest.raises(RecipeError, match=r"^evaluator\.train\.gpus_per_worker: each of the 2 data-parallel"):
        check_resources(evaluator("evaluator.train.gpus_per_worker=1").resources(), TWO_CPUS)


def test_data_parallel_pbt_members_demand_their_workers_only():
    demands = {d.what for d in evaluator("evaluator.pbt={population: 2}").resources()}
    assert "each of the 2 data-parallel training workers" in demands and "each PBT member" not in demands


def test_no_demand_without_data_parallel_training():
    for override in ("evaluator.train.workers=1", f"evaluator.weights={RECIPE}"):
        assert not [d for d in evaluator(override).resources() if "data-parallel" in d.what]


@pytest.mark.parametrize("override,field", [
    ("evaluator.train.batch_size=63", "evaluator.train.batch_size"),
    ("evaluator.few_shot={}", "evaluator.train.workers"),
    ("evaluator.train.workers=0", "evaluator.train.workers"),
])
def test_bad_settings_name_the_field(override, field):
    with pytest.raises(RecipeError) as err:
        evaluator(override)
    assert err.value.field == field, str(err.value)


def test_the_source_trains_with_ray_train_under_the_backend_storage(tmp_path):
    source = evaluator(storage_path=str(tmp_path)).weights_source()
    assert isinstance(source, TrainedWeights) and source.storage_path == str(tmp_path.resolve())
    assert source.train["workers"] == 2 and source.train["num_threads"] == 1  # floor(0.6 CPUs), at least 1
    spec = evaluator().spec
    assert source.key(spec) == TrainedWeights(source.sampling, source.sampling_config, source.train).key(spec)
    assert DDP_DIR not in str(source.cache_path)  # the served weights are kept as for one process


def test_raynas_run_fails_at_start_with_one_line_when_a_worker_fits_no_node(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "raynas", "run", str(RECIPE), "--quiet", "--set",
                           "evaluator.train.cpus_per_worker=3"], capture_output=True, text=True, cwd=tmp_path,
                          timeout=180)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("raynas:")]
    assert len(lines) == 1 and lines[0].startswith("raynas: error: evaluator.train.cpus_per_worker: "), lines
    assert "Traceback" not in proc.stderr and not (tmp_path / "mlflow.db").exists()


def test_a_data_parallel_member_trains_to_each_perturbation_point():
    from raynas.supernet.ddp_trial import segment_end

    assert [segment_end(done, 7, 3) for done in (0, 3, 4, 6)] == [3, 6, 6, 7]  # a restore at 4 ends at 6
    assert segment_end(2, 7, None) == 7
