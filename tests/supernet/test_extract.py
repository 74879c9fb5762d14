"""``Supernet.extract(arch)``: every registered supernet gives a stand-alone module with the supernet's
outputs on that arch (after the BN statistics it holds); mbv3 slices a static network of the subnet's
own sizes (so does transformer: tests/supernet/test_transformer_supernet.py), nb201 wraps the supernet."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from raynas.space.mbv3 import MBV3Space
from raynas.space.nb201 import NB201Space
from raynas.space.transformer import TransformerSpace
from raynas.supernet import SUPERNETS, build_supernet
from raynas.supernet.base import SubnetModule
from raynas.supernet.bn import recalibrate_bn
from tests.supernet.conftest import TINY_MBV3

SPACES = {"mbv3": lambda: MBV3Space(MBV3Space.Config(**TINY_MBV3)), "nb201": NB201Space,
          "transformer": TransformerSpace}
CONFIGS = {"mbv3": {}, "nb201": {"channels": 4}, "transformer": {}}


@pytest.mark.parametrize("name", SUPERNETS.names())
def test_extracted_subnet_computes_what_the_supernet_computes(name, digits):
    space = SPACES[name]()
    model = build_supernet(name, space, CONFIGS[name])
    x = digits.val.tensors()[0][:32]
    calib = [digits.train.tensors()[0][:64]]
    for arch in [space.sample(np.random.default_rng(seed)) for seed in range(4)]:
        recalibrate_bn(model, arch, calib, 1)
        sub = model.extract(arch)
        assert not sub.training
        with torch.no_grad():
            torch.testing.assert_close(sub(x), model.eval()(x, arch), rtol=1e-5, atol=1e-5)


def test_mbv3_extracts_a_static_network_of_the_subnets_size():
    space = SPACES["mbv3"]()
    model = build_supernet("mbv3", space)
    for seed in range(1, 20):  # kernels reaching only padding are cut to their effective size
        arch = space.sample(np.random.default_rng(seed))
        assert sum(p.numel() for p in model.extract(arch).parameters()) == space.params(arch)
    arch = space.sample(np.random.default_rng(0))
    sub = model.extract(arch)
    assert not isinstance(sub, SubnetModule)
    assert sum(p.numel() for p in sub.parameters()) == space.params(arch) < sum(p.numel() for p in model.parameters())
    with torch.no_grad():  # a copy: changing the supernet afterwards leaves it alone
        before = sub(torch.ones(1, 1, 8, 8))
        for p in model.parameters():
            p.add_(1.0)
        torch.testing.assert_close(sub(torch.ones(1, 1, 8, 8)), before)


@pytest.mark.parametrize("name", SUPERNETS.names())
def test_extract_rejects_an_arch_of_another_space(name):
    model = build_supernet(name, SPACES[name](), CONFIGS[name])
    with pytest.raises(ValueError, match="not an arch of space"):
        model.extract("not-an-arch")
