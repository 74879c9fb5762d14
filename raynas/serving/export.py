"""Saving a stand-alone subnet (``Supernet.extract(arch)``) as an MLflow PyTorch model: the one exporter."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

EXAMPLE_ROWS = 2
SIGNATURE_ROWS = 8


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
