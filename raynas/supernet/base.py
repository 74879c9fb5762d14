"""The ``Supernet`` interface: one ``nn.Module`` holding the shared weights of every arch of a space.

Contract:
  * ``forward(x, arch)`` runs the subnet ``arch`` (validated against the space: ``ValueError`` naming
    the arch otherwise) and returns logits of shape ``(batch, num_classes)``; subclasses implement
    ``_forward``.
  * Two archs share every weight tensor they both use (slices of one ``Parameter``, not copies).
  * ``extract(arch)`` returns a stand-alone ``nn.Module`` (``forward(x)``, eval mode) whose outputs equal
    ``forward(x, arch)`` in eval mode, with the BN statistics held at extraction. The default wraps the
    supernet (``SubnetModule``, every tensor kept); supernets that can slice a static network of the
    subnet's own sizes override it (mbv3).
  * Construction is deterministic: weights are initialised from ``config.seed`` with a private
    ``torch.Generator`` (the global torch RNG is never touched).
  * ``SUPERNETS`` maps a name to the class; ``build_supernet(name, space, config)`` builds one, where
    ``config`` is the class's ``Config``, a plain mapping (checked by ``raynas.typed``) or None.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import torch
from torch import nn

from raynas.registry import Registry
from raynas.space.base import Arch, SearchSpace
from raynas.typed import bounded, from_dict

SUPERNETS: Registry["Supernet"] = Registry("supernet", group="raynas.supernets")


class Supernet(nn.Module):
    """Base class: validates the arch, then calls ``_forward``. ``space_name`` names the space served."""

    space_name: str = ""

    @dataclasses.dataclass
    class Config:
        seed: int = bounded(0, ge=0)

    def __init__(self, space: SearchSpace, config: Any = None) -> None:
        super().__init__()
        if space.name != self.space_name:
            raise ValueError(f"{type(self).__name__} serves space {self.space_name!r}, not {space.name!r}")
        self.space = space
        self.config = config if config is not None else self.Config()

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:  # noqa: D401
        self.check(arch)
        return self._forward(x, arch)

    def _forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        raise NotImplementedError

    def check(self, arch: Arch) -> None:
        """``ValueError`` naming ``arch`` unless it is an arch of the served space."""
        if not self.space.contains(arch):
            raise ValueError(f"{arch!r} is not an arch of space {self.space.name}")

    def extract(self, arch: Arch) -> nn.Module:
        """The stand-alone subnet ``arch`` (see the module docstring); default: ``SubnetModule``."""
        self.check(arch)
        return SubnetModule(self, arch).eval()


class SubnetModule(nn.Module):
    """``forward(x) = supernet(x, arch)``; ``arch`` is fixed at construction."""

    def __init__(self, supernet: Supernet, arch: Arch) -> None:
        super().__init__()
        self.supernet = supernet
        self.arch = arch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.supernet(x, self.arch)


def build_supernet(name: str, space: SearchSpace, config: Any = None) -> Supernet:
    """Build the supernet registered as ``name`` for ``space``; a mapping ``config`` is type-checked."""
    cls = SUPERNETS.get(name)
    if isinstance(config, Mapping):
        config = from_dict(cls.Config, dict(config), "supernet_config")
    return cls(space, config)


def private_rng():
    """Context manager for building layers: PyTorch's default init draws from the global RNG; the
    global state is restored on exit (``init_weights`` then sets every weight from a seed)."""
    return torch.random.fork_rng(devices=[])


def init_weights(module: nn.Module, seed: int) -> None:
    """Deterministic init from ``seed``: Kaiming-normal (fan-out) convs, N(0, 0.01) linear, unit BN."""
    gen = torch.Generator().manual_seed(seed)
    for m in module.modules():
        weight = getattr(m, "weight", None)
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            if m.affine:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        elif isinstance(weight, nn.Parameter) and weight.dim() == 4:
            nn.init.kaiming_normal_(weight, mode="fan_out", nonlinearity="relu", generator=gen)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01, generator=gen)
        bias = getattr(m, "bias", None)
        if isinstance(bias, nn.Parameter) and not isinstance(m, nn.modules.batchnorm._BatchNorm):
            nn.init.zeros_(bias)
