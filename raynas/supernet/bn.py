"""BatchNorm recalibration: running statistics for one subnet of a supernet.

Running stats gathered while training a supernet mix every sampled subnet, so a subnet is evaluated
after ``recalibrate_bn``: reset every BN's running stats, forward ``num_batches`` batches through
``arch`` in train mode without gradients with ``momentum=None`` (an exact cumulative average over
those batches), restore the momenta and leave the model in eval mode. Same batches → same stats.
Only this subnet's statistics are valid afterwards.
"""
from __future__ import annotations

import itertools
from typing import Any, Iterable

import torch
from torch import nn

from raynas.space.base import Arch

DEFAULT_CALIB_BATCHES = 8


def batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


def _inputs(batch: Any) -> torch.Tensor:
    """A batch is a tensor of inputs or an ``(inputs, targets, ...)`` sequence."""
    return batch if isinstance(batch, torch.Tensor) else batch[0]


@torch.no_grad()
def recalibrate_bn(model: nn.Module, arch: Arch, batches: Iterable[Any],
                   num_batches: int = DEFAULT_CALIB_BATCHES) -> int:
    """Recompute BN running stats of ``model`` for ``arch`` from the first ``num_batches`` of
    ``batches`` (moved to the model's device); returns the number of batches used (at least one is
    required: ``ValueError`` otherwise). The model is left in eval mode. A model without BatchNorm
    (the transformer: LayerNorm only) has nothing to recalibrate: no batch is run and 0 is returned."""
    norms = batchnorms(model)
    if not norms:
        model.eval()
        return 0
    momenta = [bn.momentum for bn in norms]
    device = next(model.parameters()).device
    used = 0
    try:
        for bn in norms:
            bn.reset_running_stats()
            bn.momentum = None
        model.train()
        for batch in itertools.islice(batches, num_batches):
            model(_inputs(batch).to(device), arch)
            used += 1
    finally:
        for bn, momentum in zip(norms, momenta):
            bn.momentum = momentum
        model.eval()
    if used == 0:
        raise ValueError("recalibrate_bn needs at least one calibration batch")
    return used
