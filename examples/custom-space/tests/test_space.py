"""What the chain space promises beyond the contract: skips are identities, costs count the ops."""
from __future__ import annotations

from raynas_custom_space import ChainSpace
from raynas_custom_space.space import IDENTITY

SPACE = ChainSpace()


def test_skips_do_not_change_the_function():
    a = SPACE.from_str("conv3x3-skip-maxpool-skip-skip-conv5x5")
    b = SPACE.from_str("skip-conv3x3-maxpool-conv5x5-skip-skip")
    assert a != b and SPACE.canonical(a) == SPACE.canonical(b) == "conv3x3-maxpool-conv5x5"
    assert SPACE.canonical(SPACE.from_str("-".join(["skip"] * 6))) == IDENTITY


def test_costs_count_convolutions_and_pooling():
    only_conv3 = SPACE.from_str("conv3x3-skip-skip-skip-skip-skip")
    assert SPACE.params(only_conv3) == 9 * 16 * 16 / 1e6
    assert SPACE.flops(only_conv3) == 9 * 16 * 16 * 32 * 32 / 1e6
    assert SPACE.params(SPACE.from_str("maxpool-skip-skip-skip-skip-skip")) == 0


def test_size_is_every_op_at_every_layer():
    assert SPACE.size() == 4 ** 6
