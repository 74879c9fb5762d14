"""Elastic transformer space: contract suite, functional hash, string format, encodings, costs, config checks."""
from __future__ import annotations

import numpy as np
import pytest

from raynas.errors import RecipeError
from raynas.space import SPACES, build_space
from raynas.space.transformer import TransformerArch, TransformerSpace
from raynas.testing.space_contract import SpaceContract
from raynas.typed import from_dict

SPACE = TransformerSpace()
# Enumerable by hand: 2 embed dims, depth 1-2, 2 head and 2 MLP choices (2 * 2 * 4 ** 2 = 64 values).
TINY = TransformerSpace.Config(embed_dims=[8, 16], depths=[1, 2], num_heads=[1, 2], mlp_ratios=[1, 2], head_dim=4)


class TestTransformerContract(SpaceContract):
    @pytest.fixture
    def space(self):
        return SPACE


class TestTransformerCifarContract(SpaceContract):
    @pytest.fixture
    def space(self):
        return TransformerSpace(TransformerSpace.Config(resolution=32, in_channels=3, patch_size=4,
                                                        embed_dims=[96, 192], depths=[4, 6, 8]))


def sample(n, seed=0, space=SPACE):
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


def with_inactive_from(space, arch, other):
    """``arch`` with the settings of its inactive layers taken from ``other``."""
    keep = [space.is_active(arch, i) for i in range(space.max_depth)]
    return arch._replace(heads=tuple(a if k else b for a, b, k in zip(arch.heads, other.heads, keep)),
                         mlp_ratios=tuple(a if k else b for a, b, k in zip(arch.mlp_ratios, other.mlp_ratios, keep)))


def test_registered_and_string_format():
    assert isinstance(build_space("transformer"), TransformerSpace) and "transformer" in SPACES.names()
    assert SPACE.to_str(SPACE.smallest()) == "e32|d2|h2m2,h2m2,h2m2,h2m2"
    assert SPACE.to_str(SPACE.largest()) == "e64|d4|h4m4,h4m4,h4m4,h4m4"
    assert SPACE.from_str(" e48|d3|h4m2,h2m3,h4m4,h2m2 ") == TransformerArch(48, 3, (4, 2, 4, 2), (2, 3, 4, 2))
    assert (SPACE.num_patches, SPACE.num_tokens) == (16, 17)


@pytest.mark.parametrize("bad,msg", [
    ("e32|d2", "got 2 parts"),
    ("x32|d2|h2m2,h2m2,h2m2,h2m2", "embed dim 'x32' must look like 'e64'"),
    ("e33|d2|h2m2,h2m2,h2m2,h2m2", "embed dim 33 is not one of 32, 48, 64"),
    ("e32|2|h2m2,h2m2,h2m2,h2m2", "depth '2' must look like 'd3'"),
    ("e32|d5|h2m2,h2m2,h2m2,h2m2", "depth 5 is not one of 2, 3, 4"),
    ("e32|d2|h2m2,h2m2,h2m2", "needs 4 layers, got 3"),
    ("e32|d2|h2m2,h3m2,h2m2,h2m2", "layer 1 heads 3 is not one of 2, 4"),
    ("e32|d2|h2m2,h2m2,h2m2,h2m5", "layer 3 mlp ratio 5 is not one of 2, 3, 4"),
    ("e32|d2|h2m2,h2x2,h2m2,h2m2", "layer 1 'h2x2' must look like 'h4m2'"),
])
def test_from_str_names_the_problem(bad, msg):
    with pytest.raises(ValueError, match=msg):
        SPACE.from_str(bad)


def test_contains_rejects_wrong_shapes_and_values():
    arch = SPACE.largest()
    assert SPACE.contains(arch) and SPACE.contains(tuple(arch))
    assert not SPACE.contains(arch._replace(embed_dim=40))
    assert not SPACE.contains(arch._replace(depth=5))
    assert not SPACE.contains(arch._replace(heads=arch.heads[:-1]))
    assert not SPACE.contains(arch._replace(mlp_ratios=(4.0,) * 4))
    assert not SPACE.contains((64, 4, 4, 4))


def test_settings_beyond_active_depth_do_not_change_the_function():
    n = SPACE.functional_encoding_size
    for arch, other in zip(sample(100, seed=0), sample(100, seed=1)):
        swapped = with_inactive_from(SPACE, arch, other)
        assert SPACE.canonical(swapped) == SPACE.canonical(arch)
        assert SPACE.normalize(swapped) == SPACE.normalize(arch)
        assert np.array_equal(SPACE.encode(swapped)[:n], SPACE.encode(arch)[:n])
        assert SPACE.cost(swapped) == SPACE.cost(arch)
        if swapped != arch:  # the encoding's tail tells the values apart (the contract)
            assert not np.array_equal(SPACE.encode(swapped), SPACE.encode(arch))


def test_every_active_gene_changes_the_key():
    arch = SPACE.smallest()
    for changed in (arch._replace(embed_dim=48), arch._replace(depth=3), arch._replace(heads=(2, 4, 2, 2)),
                    arch._replace(mlp_ratios=(3, 2, 2, 2))):
        assert SPACE.canonical(changed) != SPACE.canonical(arch)
    assert SPACE.canonical(arch._replace(heads=(2, 2, 4, 4))) == SPACE.canonical(arch)  # layers 2, 3 off


def test_tiny_space_counts_by_enumeration():
    space = TransformerSpace(TINY)
    archs = list(space.enumerate())
    assert len(archs) == len(set(archs)) == space.size() == 2 * 2 * 4 ** 2
    keys = {space.canonical(a) for a in archs}
    heads = {space.encode(a)[:space.functional_encoding_size].tobytes() for a in archs}
    assert len(keys) == len(heads) == space.functional_size() == 2 * (4 + 16)
    assert len({space.encode(a).tobytes() for a in archs}) == len(archs)


def test_mutation_always_changes_the_function_and_is_described():
    rng = np.random.default_rng(0)
    for arch in sample(300):
        child = SPACE.mutate(arch, rng)
        assert SPACE.canonical(child) != SPACE.canonical(arch)
        description = SPACE.describe_mutation(arch, child)
        assert description.count(";") == 0 and any(g in description for g in ("embed", "depth", "heads", "mlp"))


def test_mutation_reaches_every_gene_kind():
    rng = np.random.default_rng(1)
    kinds = {SPACE.describe_mutation(a, SPACE.mutate(a, rng)).split(":")[0].split(".")[-1] for a in sample(200)}
    assert kinds == {"embed", "depth", "heads", "mlp"}


def test_single_arch_space_cannot_mutate():
    one = TransformerSpace(TransformerSpace.Config(embed_dims=[8], depths=[1], num_heads=[1], mlp_ratios=[1]))
    with pytest.raises(ValueError, match="cannot mutate"):
        one.mutate(one.largest(), np.random.default_rng(0))


def test_crossover_genes_come_from_parents():
    rng = np.random.default_rng(3)
    a, b = SPACE.largest(), SPACE.smallest()
    children = [SPACE.crossover(a, b, rng) for _ in range(20)]
    for child in children:
        assert child.embed_dim in (a.embed_dim, b.embed_dim) and child.depth in (a.depth, b.depth)
        assert all(g in (x, y) for g, x, y in zip(child.heads, a.heads, b.heads))
        assert all(g in (x, y) for g, x, y in zip(child.mlp_ratios, a.mlp_ratios, b.mlp_ratios))
    assert len(set(children)) > 2


def test_costs_are_ordered_and_monotone():
    big, small = SPACE.largest(), SPACE.smallest()
    for arch in sample(50):
        assert SPACE.flops(small) <= SPACE.flops(arch) <= SPACE.flops(big)
        assert SPACE.params(small) <= SPACE.params(arch) <= SPACE.params(big)
    for grown in (small._replace(embed_dim=48), small._replace(depth=3), small._replace(heads=(4, 2, 2, 2)),
                  small._replace(mlp_ratios=(3, 2, 2, 2))):
        assert SPACE.flops(grown) > SPACE.flops(small) and SPACE.params(grown) > SPACE.params(small)
    assert SPACE.cost(small) == (SPACE.flops(small), SPACE.params(small))


def test_cost_of_the_smallest_by_hand():
    # e32, 2 layers, 2 heads x 16 = Q 32, MLP 64; 16 patches of 1x2x2 = 4 inputs; 17 tokens; 10 classes
    e, t, q, h, c, k = 32, 17, 32, 64, 4, 10
    layer_macs = 3 * t * e * q + 2 * t * t * q + t * q * e + 2 * t * e * h
    layer_params = 4 * e + (3 * e * q + 3 * q) + (q * e + e) + (e * h + h) + (h * e + e)
    assert SPACE.flops(SPACE.smallest()) == 16 * c * e + 2 * layer_macs + e * k
    assert SPACE.params(SPACE.smallest()) == (c * e + e) + e + t * e + 2 * layer_params + 2 * e + (e * k + k)


@pytest.mark.parametrize("field,value,msg", [
    ("embed_dims", [64, 32], "increasing"),
    ("depths", [], "non-empty"),
    ("num_heads", [0, 2], ">= 1"),
    ("mlp_ratios", [2, 2], "increasing"),
    ("patch_size", 3, "must divide resolution 8"),
])
def test_config_errors_name_the_field(field, value, msg):
    with pytest.raises(RecipeError, match=f"space.{field}: .*{msg}"):
        from_dict(TransformerSpace.Config, {field: value}, "space")
    with pytest.raises(RecipeError):
        TransformerSpace(TransformerSpace.Config(**{field: value}))
