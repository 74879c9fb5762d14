"""Synchronised BatchNorm for data-parallel supernet training: statistics of the global batch.

``global_batch_statistics(model)`` is a context: inside it, every BatchNorm of ``model`` (the elastic
``DynamicBatchNorm2d``, which normalises the first C of its channels, and plain ``BatchNorm2d`` alike)
in training mode normalises with the mean and variance of the *global* batch — every worker's shard
— as one process training on the global batch does, and updates its running statistics with them.
``torch.nn.SyncBatchNorm`` would do this for fixed-width layers only: ``convert_sync_batchnorm``
replaces the elastic layers by full-width ones. The statistics are all-reduced by a differentiable
sum (``_SumOverWorkers``: its backward all-reduces the gradients, as ``torch.distributed.nn``'s
deprecated one did), so the gradients are those of the global batch too. One all-reduce per layer and pass gathers every
worker's own mean and variance, combined exactly (no E[x²] − E[x]² cancellation); shards must be
equal (the batch rule of ``raynas.supernet.ddp``). Outside the context, and in eval mode, the
layers are unchanged: BN recalibration of one subnet on one rank stays local. One small
all-reduce per BatchNorm per forward pass (and one in the backward), latency-bound: worth it when
each worker's shard is too small for good statistics (``docs/SCALING.md``), not otherwise.
"""
from __future__ import annotations

import contextlib
import types
from typing import Iterator

import torch
from torch import nn

from raynas.supernet.bn import batchnorms


@contextlib.contextmanager
def global_batch_statistics(model: nn.Module, enabled: bool = True) -> Iterator[None]:
    """Within the block, ``model``'s BatchNorms in training mode use the global batch's statistics
    (see the module docstring); needs an initialised process group unless not ``enabled``."""
    import torch.distributed as dist

    norms = batchnorms(model) if enabled and dist.get_world_size() > 1 else []
    for bn in norms:
        bn.forward = types.MethodType(_synced_forward, bn)
    try:
        yield
    finally:
        for bn in norms:
            del bn.forward


class _SumOverWorkers(torch.autograd.Function):
    """Differentiable all-reduce (sum): the gradient of every worker's use of the sum is itself summed."""

    @staticmethod
    def forward(ctx, values: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        total = values.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        total = grad.clone()
        dist.all_reduce(total)
        return total


def _global_moments(x: torch.Tensor, dims: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and (biased) variance over every worker's ``x`` (equal shards): each worker's
    own moments, gathered in one all-reduce (its row of a world × 2 × C tensor), combined exactly —
    the mean of the means, and the mean of the variances plus the variance of the means."""
    import torch.distributed as dist

    world, rank = dist.get_world_size(), dist.get_rank()
    local = torch.stack([x.mean(dims), x.var(dims, unbiased=False)])
    row = torch.zeros(world, 1, 1, dtype=x.dtype, device=x.device)
    row[rank] = 1.0
    gathered = _SumOverWorkers.apply(row * local)
    means, variances = gathered[:, 0], gathered[:, 1]
    mean = means.mean(0)
    return mean, variances.mean(0) + ((means - mean) ** 2).mean(0)


def _synced_forward(bn: nn.modules.batchnorm._BatchNorm, x: torch.Tensor) -> torch.Tensor:
    """``bn`` on the first ``x.shape[1]`` channels with the global batch's statistics (training mode)."""
    import torch.distributed as dist

    if not bn.training:
        return type(bn).forward(bn, x)
    channels, dims = x.shape[1], [0, *range(2, x.dim())]
    count = x.numel() // channels * dist.get_world_size()
    shape = (1, channels) + (1,) * (x.dim() - 2)
    mean, var = _global_moments(x, dims)
    _update_running(bn, channels, mean.detach(), var.detach() * count / max(1, count - 1))
    out = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + bn.eps)
    if bn.affine:
        out = out * bn.weight[:channels].view(shape) + bn.bias[:channels].view(shape)
    return out


@torch.no_grad()
def _update_running(bn: nn.modules.batchnorm._BatchNorm, channels: int, mean: torch.Tensor,
                    unbiased_var: torch.Tensor) -> None:
    """Running statistics as ``F.batch_norm`` updates them (momentum, or a cumulative average for None)."""
    bn.num_batches_tracked.add_(1)
    factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
    bn.running_mean[:channels].mul_(1 - factor).add_(mean * factor)
    bn.running_var[:channels].mul_(1 - factor).add_(unbiased_var * factor)
