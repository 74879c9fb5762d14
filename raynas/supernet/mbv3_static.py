"""Stand-alone mbv3 subnets: a static network built from *slices* of an ``MBV3Supernet``'s tensors
(plain ``Conv2d``/``BatchNorm2d``/``Linear`` of the subnet's own sizes, so its parameter count is exactly
``space.params(arch)``); what ``MBV3Supernet.extract`` returns. Its outputs equal the supernet's on the
arch in eval mode, with the BN statistics the supernet holds at extraction.
"""
from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class StaticMBConv(nn.Module):
    """A fixed inverted-residual block: 1x1 expand, kxk depthwise, 1x1 project (BN after each)."""

    def __init__(self, layers: list[nn.Module], act: nn.Module, residual: bool) -> None:
        super().__init__()
        self.expand, self.expand_bn, self.depthwise, self.depthwise_bn, self.project, self.project_bn = layers
        self.act, self.residual = act, residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.expand_bn(self.expand(x)))
        h = self.act(self.depthwise_bn(self.depthwise(h)))
        h = self.project_bn(self.project(h))
        return x + h if self.residual else h


class StaticMBV3(nn.Module):
    """A stand-alone mbv3 subnet: stem, its active blocks, head, pooling, classifier."""

    def __init__(self, stem: nn.Module, blocks: list[nn.Module], head: nn.Module, dropout: nn.Module,
                 classifier: nn.Module) -> None:
        super().__init__()
        self.stem, self.blocks, self.head = stem, nn.Sequential(*blocks), head
        self.dropout, self.classifier = dropout, classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.blocks(self.stem(x))).mean(dim=(2, 3))
        return self.classifier(self.dropout(x))


def _conv(weight: torch.Tensor, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    out_c, in_per_group, k, _ = weight.shape
    conv = nn.Conv2d(in_per_group * groups, out_c, k, stride, k // 2, groups=groups, bias=False)
    conv.weight.data.copy_(weight)
    return conv


def _bn(bn: nn.BatchNorm2d, channels: int) -> nn.BatchNorm2d:
    """A ``BatchNorm2d`` over the first ``channels`` of ``bn`` (affine parameters and running stats)."""
    out = nn.BatchNorm2d(channels, eps=bn.eps, momentum=bn.momentum)
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(out, name).data.copy_(getattr(bn, name)[:channels])
    out.num_batches_tracked.copy_(bn.num_batches_tracked)
    return out


def _mbv3_block(block: nn.Module, cin: int, kernel: int, expand: int) -> StaticMBConv:
    mid = cin * expand
    layers = [_conv(block.expand_conv.weight[:mid, :cin]), _bn(block.expand_bn, mid),
              _conv(block.depthwise.active_weight(mid, kernel), block.depthwise.stride, groups=mid),
              _bn(block.depthwise_bn, mid), _conv(block.project.weight[:, :mid]), copy.deepcopy(block.project_bn)]
    return StaticMBConv(layers, copy.deepcopy(block.act), block.residual)


@torch.no_grad()
def extract_mbv3(supernet: nn.Module, arch: Any) -> StaticMBV3:
    """The static subnet ``arch`` of an ``MBV3Supernet`` (tensors copied, so it is independent)."""
    space = supernet.space
    blocks = []
    for slot in space.active_slots(arch):
        stage, index = divmod(slot, space.max_depth)
        cin = space.slot_geometry(slot)[0]
        kernel = space.effective_kernel(slot, arch.kernels[slot])  # the taps that ever touch pixels
        blocks.append(_mbv3_block(supernet.stages[stage][index], cin, kernel, arch.expands[slot]))
    parts = (supernet.stem, supernet.head, supernet.dropout, supernet.classifier)
    stem, head, dropout, classifier = (copy.deepcopy(p) for p in parts)
    return StaticMBV3(stem, blocks, head, dropout, classifier).eval()
