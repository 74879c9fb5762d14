"""NB201 cell space: contract suite, benchmark string format, and the functional-hash counts."""
from __future__ import annotations

import collections

import numpy as np
import pytest

from raynas.space.nb201 import OPS, NB201Space, functional_form
from raynas.testing.space_contract import SpaceContract


class TestNB201Contract(SpaceContract):
    @pytest.fixture
    def space(self):
        return NB201Space()


SPACE = NB201Space()
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def test_benchmark_string_format_round_trips():
    arch = SPACE.from_str(BEST)
    assert arch == (3, 3, 3, 1, 3, 3)
    assert SPACE.to_str(arch) == BEST


@pytest.mark.parametrize("bad,msg", [
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|", r"3 '\+'-separated"),
    ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown op 'conv'"),
    ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "must come from node 0"),
    ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 needs 2 inputs"),
])
def test_bad_strings_name_the_problem(bad, msg):
    with pytest.raises(ValueError, match=msg):
        SPACE.from_str(bad)


def test_enumerates_all_15625():
    archs = list(SPACE.enumerate())
    assert len(archs) == len(set(archs)) == 5 ** 6 == SPACE.size()


def test_one_hot_encoding():
    enc = SPACE.encode(SPACE.from_str(BEST)).reshape(6, 5)
    assert (enc.sum(axis=1) == 1).all()
    assert [OPS[i] for i in enc.argmax(axis=1)] == ["nor_conv_3x3"] * 3 + ["skip_connect"] + ["nor_conv_3x3"] * 2


def test_mutate_changes_exactly_one_edge():
    rng = np.random.default_rng(0)
    for arch in list(SPACE.enumerate())[::97]:
        child = SPACE.mutate(arch, rng)
        assert sum(a != b for a, b in zip(arch, child)) == 1


def test_functional_hash_count_matches_paper_rule_and_ours():
    """NB201 reports 6,466 unique topologies; its rule keeps ``x + 0`` distinct from ``x``.
    Dropping zero terms (a strictly functional hash) merges those: 5,390 classes."""
    archs = list(SPACE.enumerate())
    assert len({functional_form(a, keep_zero_terms=True) for a in archs}) == 6466
    assert len({SPACE.canonical(a) for a in archs}) == 5390


def test_equivalences_the_hash_must_see():
    same = [
        # the op after a none edge never reaches the output
        ("|none~0|+|skip_connect~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|",
         "|none~0|+|skip_connect~0|avg_pool_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"),
        # intermediate nodes swapped (isomorphic cells)
        ("|nor_conv_3x3~0|+|avg_pool_3x3~0|none~1|+|none~0|skip_connect~1|nor_conv_1x1~2|",
         "|avg_pool_3x3~0|+|nor_conv_3x3~0|none~1|+|none~0|nor_conv_1x1~1|skip_connect~2|"),
        # a node whose output is unused
        ("|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|nor_conv_3x3~0|none~1|none~2|",
         "|avg_pool_3x3~0|+|skip_connect~0|none~1|+|nor_conv_3x3~0|none~1|none~2|"),
    ]
    for a, b in same:
        assert SPACE.canonical(SPACE.from_str(a)) == SPACE.canonical(SPACE.from_str(b))
    different = ("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|nor_conv_3x3~1|none~2|",
                 "|nor_conv_1x1~0|+|none~0|none~1|+|none~0|nor_conv_3x3~1|none~2|")
    assert SPACE.canonical(SPACE.from_str(different[0])) != SPACE.canonical(SPACE.from_str(different[1]))


def test_equivalent_archs_score_alike_in_the_benchmark(nb201_path):
    """Sanity of the hash against ground truth: within a class, 200-epoch test accuracies differ by
    training noise only (median spread well under a point), across classes they differ a lot."""
    from raynas.evaluators.nb201_table import load_table

    table = load_table(nb201_path)
    acc = table.column("c10_test_200")
    groups = collections.defaultdict(list)
    for arch in SPACE.enumerate():
        groups[SPACE.canonical(arch)].append(acc[table.row(arch)])
    spreads = [np.ptp(v) for v in groups.values() if len(v) > 1]
    assert np.median(spreads) < 1.0
    assert np.std([np.mean(v) for v in groups.values()]) > 5.0
