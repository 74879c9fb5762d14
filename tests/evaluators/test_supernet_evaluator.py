"""The ``supernet`` evaluator end to end on a local Ray: it trains a tiny mbv3 supernet on digits in its
pool; REA searches against it on the Tune backend (a replica killed mid-search, every candidate in
MLflow — a real sqlite store — with the weights version that scored it) and on the simulate backend
(sharing the pool's cache; a hot swap mid-search); the exported subnet is an MLflow PyTorch model with
the supernet's outputs."""
from __future__ import annotations

import pickle

import mlflow.pytorch
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from mlflow.tracking import MlflowClient

from raynas.errors import RecipeDeprecationWarning, RecipeError
from raynas.evaluators.supernet import EVAL_CACHE, HIT, MISS, SupernetEvaluator
from raynas.metrics import WEIGHTS_VERSION
from raynas.recipes import parse_recipe
from raynas.recipes.schema import TrackingSpec
from raynas.runtime import build_search
from raynas.serving.scorer import SubnetScorer
from raynas.serving.spec import EvalData
from raynas.tracking import MlflowTracker
from tests.runtime.helpers import Collector
from tests.serving.helpers import TINY_MBV3, TRAIN, perturbed

N = 10  # candidates per search; REA's population is larger, so every proposal is a seeded sample


def recipe_dict(tmp, **backend):
    return {
        "name": "supernet-test", "seed": 0, "space": {"name": "mbv3", **TINY_MBV3},
        "evaluator": {"name": "supernet", "sampling": "uniform", "train": TRAIN,
                      "pool": {"replicas": 2, "num_cpus": 0.5, "prepare_num_cpus": 0.5, "archs_per_call": 1},
                      "weights_dir": str(tmp / "weights")},
        "strategy": {"name": "rea", "population_size": 20, "sample_size": 3},
        "budget": {"max_candidates": N},
        "backend": {"name": "simulate", "workers": 1, "storage_path": str(tmp / "tune"), **backend},
        "ray": {"num_cpus": 2},
    }


@pytest.fixture(scope="module")
def tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("supernet")


@pytest.fixture(scope="module")
def evaluator(ray_local, tmp):
    recipe = parse_recipe(recipe_dict(tmp))
    ev = recipe.evaluator.impl(recipe.space.impl(recipe.space.config), recipe.evaluator.config)
    yield ev
    ev.close()


class Chaos:
    """A listener that kills replica 0 after candidate ``kill_at`` and publishes ``weights`` after
    ``publish_at`` (each exactly once), while the search runs."""

    def __init__(self, evaluator, kill_at=None, publish_at=None, weights=None):
        self.ev, self.kill_at, self.publish_at, self.weights = evaluator, kill_at, publish_at, weights
        self.published = None

    def on_start(self, info):
        pass

    def on_candidate(self, record):
        import ray

        if record.index == self.kill_at:
            ray.kill(self.ev.pool.replica_handles()[0])
        if record.index == self.publish_at:
            self.published = self.ev.publish(self.weights)

    def on_end(self, summary):
        pass


def search(evaluator, tmp, listeners, **backend):
    recipe = parse_recipe(recipe_dict(tmp, **backend))
    s = build_search(recipe, listeners)
    s.evaluator = evaluator  # share the module's evaluator (and its pool)
    return s.run()


@pytest.fixture(scope="module")
def first_search(evaluator, tmp):
    """A Tune search (2 concurrent trials) during which replica 0 is killed, logged to MLflow."""
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    tracker = MlflowTracker(TrackingSpec(uri, batch_size=4, flush_interval_s=3600, plots=False,
                                        spool_dir=str(tmp / "spool")))
    col = Collector()
    summary = search(evaluator, tmp, [tracker, Chaos(evaluator, kill_at=2), col],
                     name="tune", workers=2, cpus_per_worker=0.25)
    return MlflowClient(uri), tracker, col, summary


def test_replica_killed_mid_search_loses_no_candidate(first_search, evaluator, tmp):
    client, tracker, col, summary = first_search
    assert summary.num_candidates == N and summary.num_failed == 0
    assert evaluator.pool.stats()["restarts"] >= 1
    history = client.get_metric_history(tracker.run_id, "candidate/valid_acc")
    assert sorted(m.step for m in history) == list(range(N))
    table = pq.read_table(client.download_artifacts(tracker.run_id, "candidates.parquet", str(tmp))).to_pylist()
    version = evaluator.pool.version()
    assert len(table) == N and {row[WEIGHTS_VERSION] for row in table} == {version}
    assert [row[EVAL_CACHE] for row in table] == [MISS] * N
    assert all(0 <= r.metrics["valid_acc"] <= 100 and "test_acc" in r.hidden for r in col.records)


def test_another_search_shares_the_pool_and_its_cache(first_search, evaluator, tmp):
    _, _, first, _ = first_search
    col = Collector()
    summary = search(evaluator, tmp, [col])  # the simulate backend, in this process
    assert summary.num_candidates == N and summary.num_failed == 0
    by_arch = {r.arch: r for r in first.records}
    assert {r.arch for r in col.records} == set(by_arch)  # same seed: the same proposals
    for rec in col.records:  # every one scored before, with the same weights: all cache hits
        assert rec.tags[EVAL_CACHE] == HIT and rec.metrics == by_arch[rec.arch].metrics
        assert rec.tags[WEIGHTS_VERSION] == by_arch[rec.arch].tags[WEIGHTS_VERSION]


def test_publish_mid_search_versions_later_candidates(first_search, evaluator, tmp):
    old = evaluator.pool.version()
    chaos = Chaos(evaluator, publish_at=3, weights=perturbed(evaluator.weights()))
    col = Collector()
    recipe_seed = 1
    recipe = parse_recipe({**recipe_dict(tmp), "seed": recipe_seed})
    s = build_search(recipe, [chaos, col])
    s.evaluator = evaluator
    s.run()
    versions = [r.tags[WEIGHTS_VERSION] for r in col.records]
    assert chaos.published not in (None, old)
    assert versions == [old] * 4 + [chaos.published] * (N - 4)


def test_evaluator_pickles_with_its_pool(evaluator):
    clone = pickle.loads(pickle.dumps(evaluator))
    assert clone.pool.router == evaluator.pool.router and clone.pool_name == evaluator.pool_name
    arch = evaluator.space.sample(np.random.default_rng(7))
    assert clone.evaluate([arch])[0].metrics == evaluator.evaluate([arch])[0].metrics


def test_export_model_is_a_standalone_mlflow_model(evaluator, tmp):
    space = evaluator.space
    arch = space.sample(np.random.default_rng(3))
    out = evaluator.export_model(arch, str(tmp / "model"))
    model = mlflow.pytorch.load_model(out)
    info = mlflow.models.get_model_info(out)
    assert info.signature is not None and info.metadata[WEIGHTS_VERSION] == evaluator.pool.version()
    assert sum(p.numel() for p in model.parameters()) == space.params(arch)  # sliced, not the supernet
    data = EvalData.build(evaluator.spec)
    scorer = SubnetScorer(evaluator.spec, data)
    scorer.load(evaluator.weights())
    scorer.calibrate(arch)
    x = torch.from_numpy(data.val_x[:50])
    with torch.no_grad():
        torch.testing.assert_close(model(x), scorer.model(x, arch), rtol=1e-5, atol=1e-5)


def test_config_errors_name_the_field(tmp):
    base = recipe_dict(tmp)
    for key, value, path in (("sampling", "nope", "evaluator.sampling"),
                             ("train", {"epochs": 0}, "evaluator.train.epochs"),
                             ("weights", str(tmp / "missing.npz"), "evaluator.weights"),
                             ("supernet", "nb201", "evaluator.supernet")):
        data = {**base, "evaluator": {**base["evaluator"], key: value}}
        with pytest.raises(RecipeError) as err:
            recipe = parse_recipe(data)
            SupernetEvaluator(recipe.space.impl(recipe.space.config), recipe.evaluator.config)
        assert err.value.field == path, (key, str(err.value))


def test_old_pool_paths_move_into_the_pool_with_a_warning(tmp):
    base = recipe_dict(tmp)
    pool = base["evaluator"]["pool"]
    old = {**{k: v for k, v in base["evaluator"].items() if k != "pool"}, "replicas": pool["replicas"],
           "num_cpus": pool["num_cpus"], "train_num_cpus": pool["prepare_num_cpus"],
           "archs_per_call": pool["archs_per_call"]}
    with pytest.warns(RecipeDeprecationWarning) as caught:
        recipe = parse_recipe({**base, "evaluator": old})
    assert {str(w.message) for w in caught} >= {"evaluator.replicas is deprecated: use evaluator.pool.replicas",
                                                "evaluator.train_num_cpus is deprecated: "
                                                "use evaluator.pool.prepare_num_cpus"}
    assert recipe.evaluator.config.pool == parse_recipe(base).evaluator.config.pool
    with pytest.raises(RecipeError) as err:  # the same field at its old and its new path
        parse_recipe({**base, "evaluator": {**base["evaluator"], "replicas": 3}})
    assert err.value.field == "evaluator.replicas" and "evaluator.pool.replicas" in str(err.value)
