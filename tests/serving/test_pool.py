"""A real pool on a local Ray: two ``SupernetServer`` replicas of a tiny mbv3 supernet trained on digits.

Checks: served accuracies equal in-process ``evaluate_subnet`` (same weights, same calibration batches);
the evaluation cache (functional twins hit, a new version misses); hot swap; a replica killed while a
request is on it is restarted and the request answered, also after the process that published the
weights has exited; the pool handle works inside Ray tasks."""
from __future__ import annotations

import time

import pytest
import torch

from raynas.data.base import TEST, TRAIN, VAL
from raynas.serving import CACHED, REPLICA, VERSION, PoolConfig, ServerPool, build_model
from raynas.serving.sources import TrainedWeights
from raynas.serving.spec import load_splits
from raynas.supernet.train import evaluate_subnet
from raynas.supernet.weights import load_numpy, weights_version
from tests.serving.helpers import TRAIN as TRAIN_SETTINGS
from tests.serving.helpers import FreshArchs, items, perturbed, tiny_spec, twin

SPEC = tiny_spec()


@pytest.fixture(scope="module")
def trained():
    torch.set_num_threads(1)
    splits = load_splits(SPEC)
    arrays = TrainedWeights("uniform", train=TRAIN_SETTINGS).train_now(SPEC, splits)
    return splits, arrays


@pytest.fixture(scope="module")
def pool(ray_local, trained):
    _, arrays = trained
    config = PoolConfig(replicas=2, num_cpus=0.5, archs_per_call=2, prepare_num_cpus=0.5)
    pool = ServerPool.create(SPEC, config, weights=arrays)
    yield pool
    pool.shutdown()


@pytest.fixture(scope="module")
def fresh(pool):
    return FreshArchs(SPEC.build_space(), seed=0)


def in_process(splits, arrays, arch) -> tuple[float, float]:
    space, model = build_model(SPEC)
    load_numpy(model, arrays)
    calib = lambda: splits.loader(TRAIN, SPEC.calib_batch_size, shuffle=True, seed=SPEC.calib_seed)  # noqa: E731
    return tuple(100 * evaluate_subnet(model, arch, splits.loader(split, 256), calib(), SPEC.calib_batches)
                 for split in (VAL, TEST))


def test_served_results_equal_in_process_results(pool, trained, fresh):
    splits, arrays = trained
    space = SPEC.build_space()
    archs = fresh.take(4)
    replies = pool.evaluate(items(space, archs))
    assert {r[VERSION] for r in replies} == {weights_version(arrays)} == {pool.version()}
    assert {r[REPLICA] for r in replies} == {0, 1}  # two chunks of two archs, one per replica
    for arch, reply in zip(archs, replies):
        assert (reply["valid_acc"], reply["test_acc"]) == pytest.approx(in_process(splits, arrays, arch), abs=1e-9)


def test_cache_hits_functional_twins_and_misses_after_publish(pool, trained, fresh):
    _, arrays = trained
    space = SPEC.build_space()
    arch, other = twin(space, fresh.take(1)[0])
    first, = pool.evaluate(items(space, [arch]))
    again, = pool.evaluate(items(space, [other]))
    assert not first[CACHED] and again[CACHED]
    assert (again["valid_acc"], again[VERSION]) == (first["valid_acc"], first[VERSION])
    new = pool.publish(perturbed(arrays))
    try:
        after, = pool.evaluate(items(space, [other]))
        assert not after[CACHED] and after[VERSION] == new != first[VERSION]
    finally:
        assert pool.publish(arrays) == first[VERSION]


def test_publish_while_requests_are_in_flight(pool, trained, fresh):
    _, arrays = trained
    space = SPEC.build_space()
    old = pool.version()
    in_flight = pool.evaluate_async(items(space, fresh.take(16)))  # 8 chunks; 2 x 2 sent at once
    time.sleep(0.1)
    new = pool.publish(perturbed(arrays))
    later = pool.evaluate(items(space, fresh.take(2)))
    try:
        import ray

        versions = [r[VERSION] for r in ray.get(in_flight)]
        assert set(versions) <= {old, new} and versions.count(old) >= 8  # what replicas held: old weights
        assert {r[VERSION] for r in later} == {new} and pool.stats()["version"] == new
    finally:
        pool.publish(arrays)


def test_killed_replica_is_restarted_and_its_requests_answered(pool, fresh):
    import ray

    space = SPEC.build_space()
    restarts = pool.stats()["restarts"]
    victim = pool.replica_handles()[0]
    in_flight = pool.evaluate_async(items(space, fresh.take(24)))  # 12 chunks, alternating replicas
    time.sleep(0.1)
    ray.kill(victim)
    replies = ray.get(in_flight, timeout=120)
    assert len(replies) == 24 and {r[VERSION] for r in replies} == {pool.version()}
    assert pool.stats()["restarts"] == restarts + 1
    assert pool.replica_handles()[0] != victim
    assert ray.get(pool.replica_handles()[0].version.remote()) == pool.version()  # reloaded the weights


def test_weights_outlive_the_process_that_published_them(pool, trained, fresh):
    """A replica restarted after its publisher exited still loads the served weights: the router keeps
    its own copy (a ``ray.put`` object dies with its owner)."""
    import ray

    _, arrays = trained
    space = SPEC.build_space()

    @ray.remote(num_cpus=0)
    class Publisher:
        def publish(self, p, weights):
            return p.publish(weights)

    publisher = Publisher.remote()
    new = ray.get(publisher.publish.remote(pool, perturbed(arrays)))
    ray.kill(publisher)
    try:
        for handle in pool.replica_handles():
            ray.kill(handle)
        replies = pool.evaluate(items(space, fresh.take(4)))
        assert {r[VERSION] for r in replies} == {new}
        assert [ray.get(h.version.remote()) for h in pool.replica_handles()] == [new, new]
    finally:
        pool.publish(arrays)


def test_pool_handle_works_inside_ray_tasks(pool, fresh):
    import ray

    space = SPEC.build_space()
    arch, other = twin(space, fresh.take(1)[0])
    mine, = pool.evaluate(items(space, [arch]))

    @ray.remote(num_cpus=0)
    def remote_eval(p, its):
        return p.evaluate(its)

    theirs, = ray.get(remote_eval.remote(pool, items(space, [other])))
    assert theirs[CACHED] and theirs["valid_acc"] == mine["valid_acc"]  # one cache for every client
