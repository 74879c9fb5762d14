"""Dynamic (elastic) layers for weight-sharing supernets, in the manner of Once-for-All and BigNAS.

Each layer owns the weights of its *largest* setting and runs a smaller setting on a leading slice:
  * ``DynamicPointwiseConv`` — 1x1 conv; input channels from ``x``, output channels chosen per call
    (``weight[:out, :in]``: the first channels are shared);
  * ``DynamicDepthwiseConv`` — depthwise conv; channels from ``x``, kernel size chosen per call by
    center-cropping the largest kernel (``weight[:c, :, s:s+k, s:s+k]``);
  * ``DynamicBatchNorm2d`` — BN over the first ``C`` channels of its parameters and running stats
    (running stats of the slice are updated in place; ``momentum=None`` gives a cumulative average,
    which ``raynas.supernet.bn`` uses for recalibration).
Slices are views of one ``Parameter``: gradients of every subnet land in the same tensor.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DynamicPointwiseConv(nn.Module):
    """1x1 convolution without bias; ``forward(x, out_channels)`` uses ``weight[:out, :x.shape[1]]``."""

    def __init__(self, max_in: int, max_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(max_out, max_in, 1, 1))

    def forward(self, x: torch.Tensor, out_channels: int) -> torch.Tensor:
        return F.conv2d(x, self.weight[:out_channels, : x.shape[1]])


class DynamicDepthwiseConv(nn.Module):
    """Depthwise conv with 'same' padding; ``forward(x, kernel)`` center-crops the largest kernel."""

    def __init__(self, max_channels: int, max_kernel: int, stride: int) -> None:
        super().__init__()
        self.max_kernel, self.stride = max_kernel, stride
        self.weight = nn.Parameter(torch.empty(max_channels, 1, max_kernel, max_kernel))

    def active_weight(self, channels: int, kernel: int) -> torch.Tensor:
        start = (self.max_kernel - kernel) // 2
        return self.weight[:channels, :, start : start + kernel, start : start + kernel]

    def forward(self, x: torch.Tensor, kernel: int) -> torch.Tensor:
        channels = x.shape[1]
        weight = self.active_weight(channels, kernel)
        return F.conv2d(x, weight, None, self.stride, kernel // 2, 1, channels)


class DynamicBatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` that normalises the first ``x.shape[1]`` of its ``num_features`` channels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if c == self.num_features:
            return super().forward(x)
        factor = 0.0
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        use_batch_stats = self.training or not self.track_running_stats
        return F.batch_norm(
            x,
            self.running_mean[:c] if self.track_running_stats else None,
            self.running_var[:c] if self.track_running_stats else None,
            self.weight[:c], self.bias[:c], use_batch_stats, factor, self.eps,
        )


class ConvBNAct(nn.Sequential):
    """Static conv (no bias) + BN + activation, 'same' padding."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, act: type[nn.Module] = nn.Hardswish):
        super().__init__(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout), act())
