"""NB201 cell supernet: shapes on 8x8 digits and 32x32 CIFAR inputs, single-path weight sharing."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from raynas.space.nb201 import EDGES, OPS, NB201Space
from raynas.supernet import build_supernet

SPACE = NB201Space()
ALL_NONE = (0,) * len(EDGES)
ALL_CONV3 = (OPS.index("nor_conv_3x3"),) * len(EDGES)


def archs(n=30, seed=0):
    rng = np.random.default_rng(seed)
    return [ALL_NONE, ALL_CONV3] + [SPACE.sample(rng) for _ in range(n)]


@torch.no_grad()
@pytest.mark.parametrize("in_channels,res", [(1, 8), (3, 32)])
def test_forward_shape_for_random_archs(in_channels, res):
    model = build_supernet("nb201", SPACE, {"in_channels": in_channels, "channels": 4}).eval()
    for arch in archs(n=30 if res == 8 else 3):
        out = model(torch.randn(2, in_channels, res, res), arch)
        assert out.shape == (2, 10) and torch.isfinite(out).all()


@torch.no_grad()
def test_all_none_cell_ignores_the_input():
    model = build_supernet("nb201", SPACE).eval()
    a, b = model(torch.randn(2, 1, 8, 8), ALL_NONE), model(torch.randn(2, 1, 8, 8), ALL_NONE)
    assert torch.allclose(a, b)


def test_gradients_reach_only_the_ops_the_arch_uses():
    model = build_supernet("nb201", SPACE)
    arch = SPACE.from_str("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_3x3~2|")
    out = model(torch.randn(4, 1, 8, 8), arch)
    (out * torch.randn_like(out)).sum().backward()
    for cell in [m for m in model.layers if hasattr(m, "edges")]:
        for edge, ops in enumerate(cell.edges):
            for name, op in ops.items():
                grads = [p.grad for p in op.parameters()]
                used = OPS[arch[edge]] == name
                assert all((g is not None and g.abs().sum() > 0) == used for g in grads), (edge, name)


def test_same_op_on_same_edge_is_one_tensor_for_all_archs():
    model = build_supernet("nb201", SPACE)
    conv = model.layers[0].edges[0]["nor_conv_3x3"][1].weight
    x = torch.randn(2, 1, 8, 8)
    for arch in [a for a in archs(n=40) if a[0] == ALL_CONV3[0]][:3]:
        model.zero_grad()
        out = model(x, arch)
        (out * torch.randn_like(out)).sum().backward()
        assert conv.grad is not None and conv.grad.abs().sum() > 0


def spatial_convs_outside_cells(model) -> int:
    cells = {id(p) for m in model.layers if hasattr(m, "edges") for p in m.parameters()}
    return sum(1 for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1)
               and id(m.weight) not in cells)


@torch.no_grad()
def test_pool_reduction_leaves_all_spatial_processing_but_the_stem_to_the_cells():
    resnet = build_supernet("nb201", SPACE, {"channels": 4})
    lean = build_supernet("nb201", SPACE, {"channels": 4, "reduction": "pool"}).eval()
    assert spatial_convs_outside_cells(resnet) == 1 + 2 * 2  # stem + two 3x3 convs per reduction block
    assert spatial_convs_outside_cells(lean) == 1  # the stem only
    for arch in archs(n=5):
        assert lean(torch.randn(2, 1, 16, 16), arch).shape == (2, 10)


def test_an_unknown_reduction_names_the_field():
    from raynas.errors import RecipeError

    with pytest.raises(RecipeError, match="reduction.*resnet, pool"):
        build_supernet("nb201", SPACE, {"reduction": "maxpool"})
