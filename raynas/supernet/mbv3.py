"""Elastic MobileNetV3-style supernet for ``raynas.space.mbv3`` (weight slicing as in OFA / BigNAS).

Skeleton (from the space's ``Config``): stem 3x3 conv-BN-hswish; per stage ``max_depth`` MBConv blocks
(1x1 expand, depthwise kxk with the stage's stride in its first block, 1x1 project, residual when the
shape is kept); head 1x1 conv-BN-hswish; global average pool; dropout; linear classifier.

Elasticity, all by sharing one tensor per layer:
  * depth — a stage runs its first ``depth`` blocks and skips the rest;
  * expand — a block's hidden width is ``in_channels * expand``: the first channels of the expand conv,
    depthwise conv, their BNs and the project conv's inputs;
  * kernel — the centre ``k x k`` crop of the block's largest depthwise kernel (OFA's kernel transform
    matrices are not used, so equivalent kernels in ``MBV3Space.normalize`` really give equal outputs; the
    supernet runs the smallest equivalent kernel, ``space.effective_kernel``, which skips taps that only
    ever multiply padding).
The subnet uses exactly ``space.params(arch)`` parameters and ``space.flops(arch)`` MACs per image.
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from raynas.space.mbv3 import MBV3Arch, MBV3Space
from raynas.supernet.base import SUPERNETS, Supernet, init_weights, private_rng
from raynas.supernet.ops import ConvBNAct, DynamicBatchNorm2d, DynamicDepthwiseConv, DynamicPointwiseConv
from raynas.typed import bounded


class ElasticMBConv(nn.Module):
    """Inverted-residual block with elastic kernel size and expand ratio; ``forward(x, kernel, expand)``."""

    def __init__(self, cin: int, cout: int, stride: int, max_expand: int, max_kernel: int) -> None:
        super().__init__()
        mid = cin * max_expand
        self.residual = stride == 1 and cin == cout
        self.expand_conv = DynamicPointwiseConv(cin, mid)
        self.expand_bn = DynamicBatchNorm2d(mid)
        self.depthwise = DynamicDepthwiseConv(mid, max_kernel, stride)
        self.depthwise_bn = DynamicBatchNorm2d(mid)
        self.project = DynamicPointwiseConv(mid, cout)
        self.project_bn = nn.BatchNorm2d(cout)
        self.act = nn.Hardswish()

    def forward(self, x: torch.Tensor, kernel: int, expand: int) -> torch.Tensor:
        cin = x.shape[1]
        h = self.act(self.expand_bn(self.expand_conv(x, cin * expand)))
        h = self.act(self.depthwise_bn(self.depthwise(h, kernel)))
        h = self.project_bn(self.project(h, self.project.weight.shape[0]))
        return x + h if self.residual else h


@SUPERNETS.register("mbv3")
class MBV3Supernet(Supernet):
    """Weight-sharing supernet of every arch of an ``MBV3Space`` (input ``(B, in_channels, R, R)``)."""

    space_name = "mbv3"

    @dataclasses.dataclass
    class Config:
        seed: int = bounded(0, ge=0)
        dropout: float = bounded(0.0, ge=0.0, lt=1.0)
        channels_last: bool = True  # NHWC activations: 3-5x faster depthwise convs on CPU (oneDNN)

    def __init__(self, space: MBV3Space, config: "MBV3Supernet.Config | None" = None) -> None:
        super().__init__(space, config)
        cfg = space.config
        with private_rng():
            self.stem = ConvBNAct(cfg.in_channels, cfg.stem_width, 3)
            self.stages = nn.ModuleList(self._stage(space, stage) for stage in range(space.num_stages))
            self.head = ConvBNAct(cfg.stage_widths[-1], cfg.head_width, 1)
            self.dropout = nn.Dropout(self.config.dropout)
            self.classifier = nn.Linear(cfg.head_width, cfg.num_classes)
        init_weights(self, self.config.seed)

    @staticmethod
    def _stage(space: MBV3Space, stage: int) -> nn.ModuleList:
        blocks = nn.ModuleList()
        for block in range(space.max_depth):
            cin, cout, stride, _ = space.slot_geometry(stage * space.max_depth + block)
            blocks.append(ElasticMBConv(cin, cout, stride, space.expand_choices[-1], space.kernel_choices[-1]))
        return blocks

    def extract(self, arch: MBV3Arch) -> nn.Module:
        """A static network sliced from this supernet (``raynas.supernet.mbv3_static``): plain convs,
        BNs and linear layers of the subnet's own sizes, ``space.params(arch)`` parameters."""
        from raynas.supernet.mbv3_static import extract_mbv3

        self.check(arch)
        return extract_mbv3(self, arch)

    def _forward(self, x: torch.Tensor, arch: MBV3Arch) -> torch.Tensor:
        depths, kernels, expands = arch
        x = self.stem(x)
        if self.config.channels_last:  # after the stem: a 1-channel input has no distinct NHWC layout
            x = x.contiguous(memory_format=torch.channels_last)
        for stage, blocks in enumerate(self.stages):
            for block in range(depths[stage]):
                slot = stage * self.space.max_depth + block
                x = blocks[block](x, self.space.effective_kernel(slot, kernels[slot]), expands[slot])
        x = self.head(x).mean(dim=(2, 3))
        return self.classifier(self.dropout(x))
