"""Elastic ViT supernet for ``raynas.space.transformer`` (weight entanglement, AutoFormer / HAT).

Skeleton (from the space's ``Config``): the image cut into ``patch_size`` patches, each embedded by a
strided conv (``DynamicPatchEmbed``); a learned class token prepended and learned position embeddings
added; ``max(depths)`` pre-norm encoder layers (``x + proj(MHA(LN(x)))``, ``x + fc2(GELU(fc1(LN(x))))``);
a final LayerNorm of the class token (the pooled representation: no mean pooling); dropout; a linear
classifier.

Elasticity, all by slicing one tensor per layer (``raynas.supernet.transformer_ops``):
  * embed dim ``E`` — the first ``E`` features of the patch embedding, class token, position
    embeddings, every LayerNorm, the inputs of qkv/fc1/head and the outputs of proj/fc2;
  * depth — the first ``depth`` layers run, the rest are skipped;
  * heads ``h`` — q, k and v each of width ``h * head_dim`` (the first heads of each);
  * MLP ratio ``r`` — the first ``r * E`` hidden units of fc1 and fc2.
There is no BatchNorm (LayerNorm only), so BN recalibration (``raynas.supernet.bn``) finds nothing to
reset and changes nothing: a subnet's outputs depend on the weights alone. The subnet uses exactly
``space.params(arch)`` parameters and ``space.flops(arch)`` MACs per image (``TransformerSpace.cost``).
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from raynas.space.transformer import SPACE_NAME, TransformerArch, TransformerSpace
from raynas.supernet.base import SUPERNETS, Supernet, private_rng
from raynas.supernet.transformer_ops import DynamicLayerNorm, DynamicLinear, DynamicPatchEmbed, DynamicQKV
from raynas.supernet.transformer_static import CLS_INDEX, attend, embed_tokens
from raynas.typed import bounded

TOKEN_INIT_STD = 0.02  # class token and position embeddings (ViT/DeiT)
TRUNCATE = 2.0  # truncated normals cut at this many standard deviations


class ElasticEncoderLayer(nn.Module):
    """Pre-norm encoder layer with elastic heads and MLP ratio; ``forward(x, heads, mlp_ratio)``, the
    embed dim from ``x``."""

    def __init__(self, max_embed: int, max_qkv: int, max_hidden: int, head_dim: int) -> None:
        super().__init__()
        self.head_dim = head_dim
        self.norm1 = DynamicLayerNorm(max_embed)
        self.qkv = DynamicQKV(max_embed, max_qkv)
        self.proj = DynamicLinear(max_qkv, max_embed)
        self.norm2 = DynamicLayerNorm(max_embed)
        self.fc1 = DynamicLinear(max_embed, max_hidden)
        self.fc2 = DynamicLinear(max_hidden, max_embed)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor, heads: int, mlp_ratio: int) -> torch.Tensor:
        embed, qkv_dim = x.shape[-1], heads * self.head_dim
        x = x + self.proj(attend(self.qkv(self.norm1(x), qkv_dim), heads, self.head_dim), embed)
        return x + self.fc2(self.act(self.fc1(self.norm2(x), mlp_ratio * embed)), embed)


@SUPERNETS.register(SPACE_NAME)
class TransformerSupernet(Supernet):
    """Weight-entangled supernet of every arch of a ``TransformerSpace`` (input ``(B, in_channels, R, R)``)."""

    space_name = SPACE_NAME

    @dataclasses.dataclass
    class Config:
        seed: int = bounded(0, ge=0)
        dropout: float = bounded(0.0, ge=0.0, lt=1.0)  # before the classifier

    def __init__(self, space: TransformerSpace, config: "TransformerSupernet.Config | None" = None) -> None:
        super().__init__(space, config)
        cfg = space.config
        embed, qkv = space.embed_choices[-1], space.qkv_dim(space.head_choices[-1])
        with private_rng():
            self.patch_embed = DynamicPatchEmbed(cfg.in_channels, embed, cfg.patch_size)
            self.cls_token = nn.Parameter(torch.empty(1, 1, embed))
            self.pos_embed = nn.Parameter(torch.empty(1, space.num_tokens, embed))
            self.layers = nn.ModuleList(ElasticEncoderLayer(embed, qkv, space.mlp_choices[-1] * embed, cfg.head_dim)
                                        for _ in range(space.max_depth))
            self.norm = DynamicLayerNorm(embed)
            self.dropout = nn.Dropout(self.config.dropout)
            self.head = DynamicLinear(embed, cfg.num_classes)
        init_transformer(self, self.config.seed)

    def extract(self, arch: TransformerArch) -> nn.Module:
        """A static ViT sliced from this supernet (``raynas.supernet.transformer_static``): plain conv,
        linear and LayerNorm layers of the subnet's own sizes, ``space.params(arch)`` parameters."""
        from raynas.supernet.transformer_static import extract_transformer

        self.check(arch)
        return extract_transformer(self, arch)

    def _forward(self, x: torch.Tensor, arch: TransformerArch) -> torch.Tensor:
        embed, depth, heads, mlp_ratios = arch
        x = embed_tokens(self.patch_embed(x, embed), self.cls_token[..., :embed], self.pos_embed[..., :embed])
        for layer in range(depth):
            x = self.layers[layer](x, heads[layer], mlp_ratios[layer])
        return self.head(self.dropout(self.norm(x[:, CLS_INDEX])), self.head.weight.shape[0])


@torch.no_grad()
def init_transformer(module: nn.Module, seed: int) -> None:
    """Deterministic init from ``seed`` with a private ``torch.Generator``: weight matrices and patch
    filters LeCun-normal (std ``1 / sqrt(fan_in)`` of the largest setting, truncated at two std; ViT's
    fixed 0.02 is tuned for width 768 and leaves these narrow nets near chance for epochs), class
    token and position embeddings truncated-normal with std ``TOKEN_INIT_STD``, biases zero,
    LayerNorms unit scale and zero shift."""
    gen = torch.Generator().manual_seed(seed)
    for name, param in module.named_parameters():
        owner = module.get_submodule(name.rpartition(".")[0]) if "." in name else module
        if isinstance(owner, DynamicLayerNorm):
            nn.init.ones_(param) if name.endswith("weight") else nn.init.zeros_(param)
        elif name.endswith("bias"):
            nn.init.zeros_(param)
        else:
            std = TOKEN_INIT_STD if owner is module else _fan_in(param) ** -0.5
            nn.init.trunc_normal_(param, std=std, a=-TRUNCATE * std, b=TRUNCATE * std, generator=gen)


def _fan_in(weight: torch.Tensor) -> int:
    """Inputs per output of a patch filter ``(E, C, p, p)`` or of a linear weight ``(..., in)``."""
    return weight[0].numel() if weight.dim() == 4 else weight.shape[-1]
