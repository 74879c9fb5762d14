"""Elastic MobileNetV3 space: contract suite, functional hash, string format, costs, config checks."""
from __future__ import annotations

import numpy as np
import pytest

from raynas.errors import RecipeError
from raynas.space import build_space
from raynas.space.mbv3 import MBV3Arch, MBV3Space
from raynas.testing.space_contract import SpaceContract
from raynas.typed import from_dict

SPACE = MBV3Space()
# Enumerable: 2 stages, depth 1-2, kernels 3/5, expand 1/2 on a 3x3 input (1,024 arch values).
TINY = MBV3Space.Config(depths=[1, 2], kernel_sizes=[3, 5], expand_ratios=[1, 2], stage_widths=[2, 2],
                        stage_strides=[1, 2], stem_width=2, head_width=2, resolution=3)


class TestMBV3Contract(SpaceContract):
    @pytest.fixture
    def space(self):
        return SPACE


class TestMBV3CifarContract(SpaceContract):
    @pytest.fixture
    def space(self):
        return MBV3Space(MBV3Space.Config(resolution=32, in_channels=3, stage_strides=[1, 2, 2, 1, 2]))


def sample(n, seed=0, space=SPACE):
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


def test_registered_and_string_format():
    assert isinstance(build_space("mbv3"), MBV3Space)
    text = SPACE.to_str(SPACE.smallest())
    assert text == "|".join(["d2:" + ",".join(["k3e3"] * 4)] * 5)
    assert SPACE.from_str(" " + text + " ") == SPACE.smallest()


@pytest.mark.parametrize("bad,msg", [
    ("d2:k3e3,k3e3,k3e3,k3e3", "expected 5 '|'-separated stages"),
    ("|".join(["d5:k3e3,k3e3,k3e3,k3e3"] * 5), "stage 0 depth 5 is not one of 2, 3, 4"),
    ("|".join(["d2:k3e3,k3e3,k3e3"] * 5), "stage 0 needs 4 blocks, got 3"),
    ("|".join(["d2:k3e3,k4e3,k3e3,k3e3"] * 5), "block 0.1 kernel 4 is not one of 3, 5, 7"),
    ("|".join(["d2:k3e3,k3e3,k3e3,k3x3"] * 5), "block 0.3 'k3x3' must look like 'k3e4'"),
    ("|".join(["2:k3e3,k3e3,k3e3,k3e3"] * 5), "stage 0 must look like"),
])
def test_from_str_names_the_problem(bad, msg):
    with pytest.raises(ValueError, match=msg.replace("|", r"\|")):
        SPACE.from_str(bad)


def test_contains_rejects_wrong_shapes_and_values():
    arch = SPACE.largest()
    assert SPACE.contains(arch) and SPACE.contains(tuple(arch))
    assert not SPACE.contains(arch._replace(depths=(5,) * 5))
    assert not SPACE.contains(arch._replace(kernels=arch.kernels[:-1]))
    assert not SPACE.contains(arch._replace(expands=(6.0,) * 20))
    assert not SPACE.contains((3, 3, 3, 3, 3, 3))


def test_settings_beyond_active_depth_do_not_change_the_key():
    for arch, other in zip(sample(50, seed=0), sample(50, seed=1)):
        swapped = arch._replace(
            kernels=tuple(k if SPACE.is_active(arch, i) else other.kernels[i] for i, k in enumerate(arch.kernels)),
            expands=tuple(e if SPACE.is_active(arch, i) else other.expands[i] for i, e in enumerate(arch.expands)))
        assert SPACE.canonical(swapped) == SPACE.canonical(arch)
        assert np.array_equal(SPACE.encode(swapped), SPACE.encode(arch))
        assert SPACE.flops(swapped) == SPACE.flops(arch)


def test_active_settings_change_the_key():
    arch = SPACE.smallest()
    assert SPACE.canonical(arch._replace(expands=(4,) + arch.expands[1:])) != SPACE.canonical(arch)
    assert SPACE.canonical(arch._replace(depths=(3,) + arch.depths[1:])) != SPACE.canonical(arch)
    assert SPACE.canonical(arch._replace(kernels=(7,) + arch.kernels[1:])) != SPACE.canonical(arch)


def test_kernels_on_a_2x2_map_are_one_class():
    assert SPACE.stage_resolutions[-1] == (4, 2)
    last = SPACE.num_slots - 1  # stride-1 block on the final 2x2 map
    assert {SPACE.effective_kernel(last, k) for k in (3, 5, 7)} == {3}
    assert {SPACE.effective_kernel(0, k) for k in (3, 5, 7)} == {3, 5, 7}
    first_of_last = SPACE.num_slots - SPACE.max_depth  # stride 2 from 4x4: 7 reaches one pixel more than 5
    assert [SPACE.effective_kernel(first_of_last, k) for k in (3, 5, 7)] == [3, 5, 7]
    big = SPACE.largest()
    small_kernel = big._replace(kernels=big.kernels[:-1] + (3,))
    assert SPACE.canonical(small_kernel) == SPACE.canonical(big) and SPACE.describe_mutation(big, small_kernel) == ""


def test_tiny_space_counts_by_enumeration():
    space = MBV3Space(TINY)
    archs = list(space.enumerate())
    assert len(archs) == len(set(archs)) == space.size() == 2 ** 2 * 4 ** 4
    keys = {space.canonical(a) for a in archs}
    codes = {space.encode(a).tobytes() for a in archs}
    assert len(keys) == len(codes) == space.functional_size()
    assert len(keys) < len(archs)


def test_mutation_always_changes_the_function_and_is_described():
    rng = np.random.default_rng(0)
    for arch in sample(200):
        child = SPACE.mutate(arch, rng)
        assert SPACE.canonical(child) != SPACE.canonical(arch)
        description = SPACE.describe_mutation(arch, child)
        assert description.count(";") == 0 and any(g in description for g in ("depth", "kernel", "expand"))


def test_crossover_genes_come_from_parents():
    rng = np.random.default_rng(3)
    a, b = SPACE.largest(), SPACE.smallest()
    child = SPACE.crossover(a, b, rng)
    for field in MBV3Arch._fields:
        assert all(g in (x, y) for g, x, y in zip(getattr(child, field), getattr(a, field), getattr(b, field)))
    assert child not in (a, b)


def test_costs_are_ordered_and_monotone():
    big, small = SPACE.largest(), SPACE.smallest()
    for arch in sample(30):
        assert SPACE.flops(small) <= SPACE.flops(arch) <= SPACE.flops(big)
        assert SPACE.params(small) <= SPACE.params(arch) <= SPACE.params(big)
    wider = small._replace(expands=(6,) + small.expands[1:])
    deeper = small._replace(depths=(3,) + small.depths[1:])
    assert SPACE.flops(wider) > SPACE.flops(small) and SPACE.flops(deeper) > SPACE.flops(small)
    assert SPACE.cost(small) == (SPACE.flops(small), SPACE.params(small))


@pytest.mark.parametrize("field,value,msg", [
    ("kernel_sizes", [3, 4], "must be odd"),
    ("depths", [3, 2], "increasing"),
    ("stage_strides", [1, 2], "one per stage width"),
    ("stage_strides", [1, 3, 1, 1, 2], "must be 1 or 2"),
])
def test_config_errors_name_the_field(field, value, msg):
    with pytest.raises(RecipeError, match=f"space.{field}: .*{msg}"):
        from_dict(MBV3Space.Config, {field: value}, "space")
    with pytest.raises(RecipeError):
        MBV3Space(MBV3Space.Config(**{field: value}))
