"""Entangled (elastic) layers of the transformer supernet, in the manner of AutoFormer and HAT.

Each layer owns the weights of its *largest* setting; a smaller setting runs on the leading slice, a
view of the same ``Parameter``, so the gradients of every subnet land in one tensor:
  * ``DynamicLinear`` — ``weight[:out, :in]`` and ``bias[:out]``; ``in`` from ``x``, ``out`` per call;
  * ``DynamicQKV`` — q, k and v each ``weight[j, :Q, :E]`` of a ``(3, Q_max, E_max)`` tensor, so q, k
    and v keep their own leading slices whatever the number of heads (slicing the fused
    ``(3 Q_max, E_max)`` matrix's first ``3 Q`` rows instead would hand k's rows to q);
  * ``DynamicLayerNorm`` — LayerNorm over the first ``E`` features (``weight[:E]``, ``bias[:E]``);
  * ``DynamicPatchEmbed`` — a ``patch_size``-strided conv, the first ``E`` output channels.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LN_EPS = 1e-6
QKV = 3


class DynamicLinear(nn.Module):
    """Linear layer with bias; ``forward(x, out_features)`` uses ``weight[:out, :x.shape[-1]]``."""

    def __init__(self, max_in: int, max_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(max_out, max_in))
        self.bias = nn.Parameter(torch.empty(max_out))

    def active(self, out_features: int, in_features: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(weight, bias)`` of the setting ``(out_features, in_features)``: slices, not copies."""
        return self.weight[:out_features, :in_features], self.bias[:out_features]

    def forward(self, x: torch.Tensor, out_features: int) -> torch.Tensor:
        return F.linear(x, *self.active(out_features, x.shape[-1]))


class DynamicQKV(nn.Module):
    """Fused q/k/v projection with bias; ``forward(x, qkv_dim)`` returns ``(B, T, 3 * qkv_dim)`` as
    ``[q | k | v]`` (the layout ``transformer_static.attend`` reads)."""

    def __init__(self, max_in: int, max_qkv: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(QKV, max_qkv, max_in))
        self.bias = nn.Parameter(torch.empty(QKV, max_qkv))

    def active(self, qkv_dim: int, in_features: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(weight (3Q, E), bias (3Q,))`` for q/k/v width ``qkv_dim``: each of q, k, v its leading slice."""
        weight = self.weight[:, :qkv_dim, :in_features].reshape(QKV * qkv_dim, in_features)
        return weight, self.bias[:, :qkv_dim].reshape(QKV * qkv_dim)

    def forward(self, x: torch.Tensor, qkv_dim: int) -> torch.Tensor:
        return F.linear(x, *self.active(qkv_dim, x.shape[-1]))


class DynamicLayerNorm(nn.Module):
    """LayerNorm over the last dimension, whose size ``E`` (at most ``max_dim``) comes from ``x``."""

    def __init__(self, max_dim: int, eps: float = LN_EPS) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(max_dim))
        self.bias = nn.Parameter(torch.zeros(max_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dim = x.shape[-1]
        return F.layer_norm(x, (dim,), self.weight[:dim], self.bias[:dim], self.eps)


class DynamicPatchEmbed(nn.Module):
    """Non-overlapping ``patch_size`` patches embedded by a strided conv with bias; ``forward(x, dim)``
    returns ``(B, dim, H / p, W / p)`` from the first ``dim`` filters."""

    def __init__(self, in_channels: int, max_dim: int, patch_size: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.weight = nn.Parameter(torch.empty(max_dim, in_channels, patch_size, patch_size))
        self.bias = nn.Parameter(torch.empty(max_dim))

    def forward(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        return F.conv2d(x, self.weight[:dim], self.bias[:dim], stride=self.patch_size)
