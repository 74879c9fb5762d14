"""NAS-Bench-201 cell supernet (single-path, SPOS-style weight sharing) for small images.

Skeleton (as in NAS-Bench-201, scaled down by ``Config``): stem 3x3 conv-BN; three stages of
``cells_per_stage`` cells with ``C``, ``2C``, ``4C`` channels, joined by ResNet reduction blocks
(stride 2); BN-ReLU; global average pool; linear classifier. Every cell holds one module per
(edge, op) pair (ops from ``raynas.space.nb201.OPS``, edges ``EDGES``); ``forward(x, arch)`` runs, on
each edge, the op the arch names (``none`` contributes nothing), the same arch in every cell.
An op's weights are shared by all archs that put that op on that edge of that cell.
"""
from __future__ import annotations

import dataclasses
import typing
from typing import Literal

import torch
from torch import nn

from raynas.space.nb201 import EDGES, NUM_NODES, OPS, NB201Arch
from raynas.supernet.base import SUPERNETS, Supernet, init_weights, private_rng
from raynas.typed import bounded

NONE, SKIP, CONV1, CONV3, POOL3 = OPS
NUM_STAGES = 3


class ReLUConvBN(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1) -> None:
        super().__init__(nn.ReLU(), nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
                         nn.BatchNorm2d(cout))


def make_op(name: str, channels: int) -> nn.Module:
    """The module of NB201 op ``name`` (not ``none``) at ``channels`` channels, stride 1."""
    makers = {
        SKIP: lambda: nn.Identity(),
        CONV1: lambda: ReLUConvBN(channels, channels, 1),
        CONV3: lambda: ReLUConvBN(channels, channels, 3),
        POOL3: lambda: nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
    }
    return makers[name]()


class NB201Cell(nn.Module):
    """The 4-node DAG; ``edges[i][op]`` is the module of op ``op`` on edge ``EDGES[i]``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(
            nn.ModuleDict({op: make_op(op, channels) for op in OPS if op != NONE}) for _ in EDGES)

    def forward(self, x: torch.Tensor, arch: NB201Arch) -> torch.Tensor:
        nodes: list[torch.Tensor | None] = [x]
        for dst in range(1, NUM_NODES):
            terms = []
            for i, (target, src) in enumerate(EDGES):
                op = OPS[arch[i]]
                if target == dst and op != NONE and nodes[src] is not None:
                    terms.append(self.edges[i][op](nodes[src]))
            nodes.append(torch.stack(terms).sum(0) if terms else None)
        return nodes[-1] if nodes[-1] is not None else torch.zeros_like(x)


class PoolReduction(nn.Sequential):
    """A lean reduction (``reduction: pool``): 2x2 average pooling and a 1x1 conv-BN widening the
    channels — no spatial processing of its own, so the cells carry all of it but the stem's."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(nn.AvgPool2d(2, 2), nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))


class ResNetReduction(nn.Module):
    """NB201's reduction block: two ReLU-conv-BN (the first with stride 2) plus a pooled 1x1 shortcut."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(cin, cout, 3, stride=2)
        self.conv_b = ReLUConvBN(cout, cout, 3)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(cin, cout, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_b(self.conv_a(x)) + self.shortcut(x)


Reduction = Literal["resnet", "pool"]
RESNET, POOL = typing.get_args(Reduction)
REDUCTIONS = {RESNET: ResNetReduction, POOL: PoolReduction}


@SUPERNETS.register("nb201")
class NB201Supernet(Supernet):
    """Weight-sharing supernet of the NB201 cell space (defaults sized for 8x8 one-channel digits)."""

    space_name = "nb201"

    @dataclasses.dataclass
    class Config:
        seed: int = bounded(0, ge=0)
        channels: int = bounded(8, ge=1)
        cells_per_stage: int = bounded(1, ge=1)
        in_channels: int = bounded(1, ge=1)
        num_classes: int = bounded(10, ge=2)
        reduction: Reduction = RESNET  # resnet: NB201's block; pool: the lean PoolReduction

    def __init__(self, space, config: "NB201Supernet.Config | None" = None) -> None:
        super().__init__(space, config)
        cfg = self.config
        last = cfg.channels * 2 ** (NUM_STAGES - 1)
        with private_rng():
            self.stem = nn.Sequential(nn.Conv2d(cfg.in_channels, cfg.channels, 3, padding=1, bias=False),
                                      nn.BatchNorm2d(cfg.channels))
            self.layers = nn.ModuleList()
            for stage in range(NUM_STAGES):
                width = cfg.channels * 2 ** stage
                if stage:
                    self.layers.append(REDUCTIONS[cfg.reduction](width // 2, width))
                self.layers.extend(NB201Cell(width) for _ in range(cfg.cells_per_stage))
            self.lastact = nn.Sequential(nn.BatchNorm2d(last), nn.ReLU())
            self.classifier = nn.Linear(last, cfg.num_classes)
        init_weights(self, cfg.seed)

    def edge_parameter_names(self, edge: int) -> set[str]:
        """Names of the parameters of edge ``edge``'s ops, in every cell (what a split on that edge
        gives each child of its own; all other parameters stay shared)."""
        marker = f".edges.{edge}."
        return {name for name, _ in self.named_parameters() if marker in name}

    def op_parameter_names(self, edge: int, op: int) -> set[str]:
        """Names of the parameters of op ``op`` (an index into ``OPS``) on edge ``edge``, in every cell
        (empty for the parameter-free ops: none, skip, pooling); what PA&DA reads gradient norms of."""
        marker = f".edges.{edge}.{OPS[op]}."
        return {name for name, _ in self.named_parameters() if marker in name}

    def _forward(self, x: torch.Tensor, arch: NB201Arch) -> torch.Tensor:
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x, arch) if isinstance(layer, NB201Cell) else layer(x)
        return self.classifier(self.lastact(x).mean(dim=(2, 3)))
