"""Stand-alone transformer subnets: a static ViT built from *copies of slices* of a ``TransformerSupernet``'s
tensors (plain ``Conv2d``/``Linear``/``LayerNorm`` of the subnet's own sizes, so its parameter count is
exactly ``space.params(arch)``); what ``TransformerSupernet.extract`` returns. In eval mode its outputs
equal the supernet's on the arch (no BatchNorm, so nothing depends on calibration). Also the one
multi-head attention kernel (``attend``) both networks run.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

TOKEN_DIM = 1  # (batch, tokens, features)
CLS_INDEX = 0  # the class token is the first token


def attend(qkv: torch.Tensor, heads: int, head_dim: int) -> torch.Tensor:
    """Scaled dot-product attention of ``qkv`` ``(B, T, 3 * heads * head_dim)`` laid out ``[q | k | v]``,
    each ``heads`` blocks of ``head_dim``; returns ``(B, T, heads * head_dim)``. Plain matmuls (so torch's
    FLOP counter sees ``2 T T Q`` MACs), softmax over keys, scale ``head_dim ** -0.5``."""
    batch, tokens, _ = qkv.shape
    q, k, v = qkv.reshape(batch, tokens, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
    weights = ((q * head_dim ** -0.5) @ k.transpose(-2, -1)).softmax(dim=-1)
    return (weights @ v).transpose(1, 2).reshape(batch, tokens, heads * head_dim)


def embed_tokens(patches: torch.Tensor, cls_token: torch.Tensor, pos_embed: torch.Tensor) -> torch.Tensor:
    """``(B, E, H', W')`` patch embeddings → ``(B, 1 + H'W', E)`` tokens: class token first, positions added."""
    tokens = patches.flatten(2).transpose(1, 2)
    cls = cls_token.expand(tokens.shape[0], -1, -1)
    return torch.cat([cls, tokens], dim=TOKEN_DIM) + pos_embed


class StaticEncoderLayer(nn.Module):
    """A fixed pre-norm encoder layer: ``x + proj(attend(qkv(LN(x))))``, then ``x + fc2(GELU(fc1(LN(x))))``."""

    def __init__(self, layers: list[nn.Module], heads: int, head_dim: int) -> None:
        super().__init__()
        self.norm1, self.qkv, self.proj, self.norm2, self.fc1, self.fc2 = layers
        self.act = nn.GELU()
        self.heads, self.head_dim = heads, head_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.proj(attend(self.qkv(self.norm1(x)), self.heads, self.head_dim))
        return x + self.fc2(self.act(self.fc1(self.norm2(x))))


class StaticViT(nn.Module):
    """A stand-alone transformer subnet: patch embedding, class token, positions, its layers, final
    LayerNorm of the class token, classifier."""

    def __init__(self, patch_embed: nn.Conv2d, cls_token: torch.Tensor, pos_embed: torch.Tensor,
                 layers: list[nn.Module], norm: nn.LayerNorm, dropout: nn.Module, head: nn.Linear) -> None:
        super().__init__()
        self.patch_embed = patch_embed
        self.cls_token, self.pos_embed = nn.Parameter(cls_token), nn.Parameter(pos_embed)
        self.layers = nn.Sequential(*layers)
        self.norm, self.dropout, self.head = norm, dropout, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(embed_tokens(self.patch_embed(x), self.cls_token, self.pos_embed))
        return self.head(self.dropout(self.norm(x[:, CLS_INDEX])))


def _linear(weight: torch.Tensor, bias: torch.Tensor) -> nn.Linear:
    out = nn.Linear(weight.shape[1], weight.shape[0])
    out.weight.data.copy_(weight)
    out.bias.data.copy_(bias)
    return out


def _layer_norm(norm: nn.Module, dim: int) -> nn.LayerNorm:
    out = nn.LayerNorm(dim, eps=norm.eps)
    out.weight.data.copy_(norm.weight[:dim])
    out.bias.data.copy_(norm.bias[:dim])
    return out


def _patch_embed(embed: nn.Module, dim: int) -> nn.Conv2d:
    weight = embed.weight[:dim]
    conv = nn.Conv2d(weight.shape[1], dim, embed.patch_size, embed.patch_size)
    conv.weight.data.copy_(weight)
    conv.bias.data.copy_(embed.bias[:dim])
    return conv


def _encoder_layer(layer: nn.Module, embed: int, heads: int, mlp_ratio: int, head_dim: int) -> StaticEncoderLayer:
    q, hidden = heads * head_dim, mlp_ratio * embed
    parts = [_layer_norm(layer.norm1, embed), _linear(*layer.qkv.active(q, embed)),
             _linear(*layer.proj.active(embed, q)), _layer_norm(layer.norm2, embed),
             _linear(*layer.fc1.active(hidden, embed)), _linear(*layer.fc2.active(embed, hidden))]
    return StaticEncoderLayer(parts, heads, head_dim)


@torch.no_grad()
def extract_transformer(supernet: nn.Module, arch: Any) -> StaticViT:
    """The static subnet ``arch`` of a ``TransformerSupernet`` (tensors copied, so it is independent)."""
    space, e = supernet.space, arch.embed_dim
    head_dim = space.config.head_dim
    layers = [_encoder_layer(supernet.layers[i], e, arch.heads[i], arch.mlp_ratios[i], head_dim)
              for i in range(arch.depth)]
    head = _linear(*supernet.head.active(supernet.head.weight.shape[0], e))
    dropout = nn.Dropout(supernet.dropout.p)
    return StaticViT(_patch_embed(supernet.patch_embed, e), supernet.cls_token[..., :e].clone(),
                     supernet.pos_embed[..., :e].clone(), layers, _layer_norm(supernet.norm, e), dropout, head).eval()
