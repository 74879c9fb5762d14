"""Stand-alone subnets: one arch of a supernet as an ``nn.Module`` with ``forward(x)``, saved as an MLflow
PyTorch model.

``extract_subnet(supernet, arch)`` returns, for an ``mbv3`` supernet, a static network built from
*slices* of the supernet's tensors (plain ``Conv2d``/``BatchNorm2d``/``Linear`` of the subnet's own
sizes: its parameter count is exactly ``space.params(arch)``); for other supernets, ``SubnetModule``,
which runs ``supernet(x, arch)`` and so holds every supernet tensor. Either way the outputs equal the
supernet's on ``arch`` in eval mode, with whatever BN statistics the supernet holds at extraction
(recalibrate for the arch first, as ``SubnetScorer.calibrate`` does).
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

EXAMPLE_ROWS = 2
SIGNATURE_ROWS = 8


class SubnetModule(nn.Module):
    """``forward(x) = supernet(x, arch)``; ``arch`` is fixed at construction."""

    def __init__(self, supernet: nn.Module, arch: Any) -> None:
        super().__init__()
        self.supernet = supernet
        self.arch = arch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.supernet(x, self.arch)


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
        blocks.append(_mbv3_block(supernet.stages[stage][index], cin, arch.kernels[slot], arch.expands[slot]))
    parts = (supernet.stem, supernet.head, supernet.dropout, supernet.classifier)
    stem, head, dropout, classifier = (copy.deepcopy(p) for p in parts)
    return StaticMBV3(stem, blocks, head, dropout, classifier).eval()


EXTRACTORS: dict[str, Callable[[nn.Module, Any], nn.Module]] = {"mbv3": extract_mbv3}


def extract_subnet(supernet: nn.Module, arch: Any) -> nn.Module:
    """A stand-alone module for ``arch`` (see the module docstring), in eval mode."""
    extract = EXTRACTORS.get(getattr(supernet, "registry_name", ""))
    return (extract(supernet, arch) if extract else SubnetModule(supernet, arch)).eval()


def save_mlflow_model(module: nn.Module, inputs: np.ndarray, out_dir: str | Path,
                      metadata: dict[str, str] | None = None) -> Path:
    """Save ``module`` (eval mode, CPU) with ``mlflow.pytorch.save_model`` (MLflow's default format: a
    traced ``pt2`` graph, loadable without raynas) and a signature inferred from ``inputs[:SIGNATURE_ROWS]``
    and the module's outputs on them; returns the model directory."""
    import mlflow.pytorch
    from mlflow.models import infer_signature

    module = module.cpu().eval()
    sample = np.ascontiguousarray(inputs[:SIGNATURE_ROWS], dtype=np.float32)
    with torch.no_grad():
        outputs = module(torch.from_numpy(sample)).numpy()
    path = Path(out_dir)
    mlflow.pytorch.save_model(module, str(path), signature=infer_signature(sample, outputs),
                              input_example=sample[:EXAMPLE_ROWS], metadata=metadata,
                              pip_requirements=[torch_requirement()])
    return path


def torch_requirement() -> str:
    """``torch==<version>`` without a local label (``+cpu``). Naming the requirements ourselves skips
    MLflow's inference of them, which loads the model in a subprocess (~20 s here)."""
    return f"torch=={torch.__version__.split('+')[0]}"
