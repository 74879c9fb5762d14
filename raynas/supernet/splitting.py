"""Collecting what gradient matching compares (GM-NAS): per-op gradients of the shared parameters.

``edge_gradients(model, subspace, edge, batches, rng)``: for each batch, one path is drawn from
``subspace`` for the other edges; then, for each op the sub-space allows on ``edge``, that edge is fixed
to the op, the batch goes forward and backward, and the gradient of every parameter *not* belonging to
``edge`` (``model.edge_parameter_names(edge)``) is flattened into one vector (zeros where a parameter
got no gradient). The result, one ``ops × parameters`` matrix per batch, is what
``raynas.supernet.gm.gradient_distances`` averages. The ops of one batch share the path and the data,
so the only difference between their gradients is the op on ``edge``. The model's own gradients are
left zeroed and its training mode unchanged.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
import torch
from torch import nn

from raynas.space.splits import SubSpace

Batch = tuple[torch.Tensor, torch.Tensor]


def edge_gradients(model: nn.Module, subspace: SubSpace, edge: int, batches: Iterable[Batch],
                   rng: np.random.Generator) -> tuple[list[int], list[np.ndarray]]:
    """``(ops, matrices)``: the ops compared (sorted) and one ``len(ops) × P`` gradient matrix per batch."""
    own = model.edge_parameter_names(edge)
    shared = [(name, p) for name, p in model.named_parameters() if name not in own and p.requires_grad]
    ops = sorted(subspace.ops(edge))
    matrices = []
    was_training = model.training
    model.train()
    for x, y in batches:
        path = list(subspace.sample(rng))
        rows = []
        for op in ops:
            path[edge] = op
            model.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(x, arch=tuple(path)), y).backward()
            rows.append(torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                                   for _, p in shared]).detach().cpu().numpy())
        matrices.append(np.stack(rows))
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return ops, matrices
