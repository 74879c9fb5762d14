"""The search-space contract suite: every ``SearchSpace`` passes it.

Use it by subclassing in a test module and providing the space::

    class TestNB201Contract(SpaceContract):
        @pytest.fixture
        def space(self):
            return NB201Space()
"""
from __future__ import annotations

import pickle
import sys

import numpy as np
import pytest

from raynas.space.base import SearchSpace

N_SAMPLES = 200


class SpaceContract:
    """Behaviour every space must have. Subclasses provide a ``space`` fixture."""

    @pytest.fixture
    def space(self) -> SearchSpace:  # pragma: no cover - overridden
        raise NotImplementedError

    @pytest.fixture
    def archs(self, space):
        rng = np.random.default_rng(0)
        return [space.sample(rng) for _ in range(N_SAMPLES)]

    def test_samples_are_members_and_hashable(self, space, archs):
        for arch in archs:
            assert space.contains(arch)
            hash(arch)

    def test_sampling_is_deterministic_for_a_seed(self, space):
        a = [space.sample(np.random.default_rng(7)) for _ in range(20)]
        b = [space.sample(np.random.default_rng(7)) for _ in range(20)]
        assert a == b

    def test_sampling_varies(self, space, archs):
        assert len(set(archs)) > 1

    def test_string_round_trip(self, space, archs):
        for arch in archs:
            s = space.to_str(arch)
            assert isinstance(s, str) and space.from_str(s) == arch
            assert space.to_str(space.from_str(s)) == s

    def test_from_str_rejects_garbage_with_value_error(self, space):
        for bad in ("", "not an arch", "|||+|", "{}"):
            with pytest.raises(ValueError):
                space.from_str(bad)

    def test_mutate_changes_arch_and_stays_in_space(self, space, archs):
        rng = np.random.default_rng(1)
        for arch in archs:
            child = space.mutate(arch, rng)
            assert child != arch and space.contains(child)
            assert isinstance(space.describe_mutation(arch, child), str)

    def test_neighbours_are_the_mutations(self, space, archs):
        """Where a space has ``neighbours``: distinct members other than the arch, holding every mutant."""
        try:
            space.neighbours(archs[0])
        except NotImplementedError:
            pytest.skip(f"{space.name} has no neighbours")
        rng = np.random.default_rng(3)
        for arch in archs[:20]:
            near = space.neighbours(arch)
            assert len(set(near)) == len(near) and arch not in near and all(space.contains(n) for n in near)
            assert space.mutate(arch, rng) in near

    def test_crossover_takes_from_parents_and_stays_in_space(self, space, archs):
        rng = np.random.default_rng(2)
        for a, b in zip(archs[::2], archs[1::2]):
            child = space.crossover(a, b, rng)
            assert space.contains(child)
        same = archs[0]
        assert space.crossover(same, same, rng) == same

    def test_operators_use_only_the_given_rng(self, space, archs):
        def run(seed):
            rng = np.random.default_rng(seed)
            return [(space.mutate(a, rng), space.crossover(a, archs[0], rng)) for a in archs[:50]]

        np.random.seed(123)
        first = run(5)
        np.random.seed(456)
        assert run(5) == first

    def test_encoding_is_fixed_length_float(self, space, archs):
        encs = np.stack([space.encode(a) for a in archs])
        assert encs.shape == (len(archs), space.encoding_size)
        assert np.issubdtype(encs.dtype, np.floating) and np.isfinite(encs).all()

    def test_distinct_archs_encode_differently(self, space, archs):
        uniq = list(dict.fromkeys(archs))
        codes = {space.encode(a).tobytes() for a in uniq}
        assert len(codes) == len(uniq)

    def test_canonical_is_stable_and_equal_for_equal_archs(self, space, archs):
        for arch in archs:
            key = space.canonical(arch)
            assert isinstance(key, str) and key == space.canonical(space.from_str(space.to_str(arch)))

    def test_space_is_picklable(self, space, archs):
        clone = pickle.loads(pickle.dumps(space))
        assert [clone.to_str(a) for a in archs[:10]] == [space.to_str(a) for a in archs[:10]]

    def test_size_matches_enumeration_when_small(self, space):
        size = space.size()
        if size is None or size > 100_000:
            pytest.skip("space too large to enumerate")
        archs = list(space.enumerate())
        assert len(archs) == size == len(set(archs))

    def test_space_module_does_not_import_torch(self, space):
        module = sys.modules[type(space).__module__]
        assert "torch" not in getattr(module, "__dict__", {}), "spaces must stay torch-free"
