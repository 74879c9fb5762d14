"""Compute-device names, one home for every layer (recipes, training, serving, latency tables), and
the one rule that turns a name into a device.

``auto`` means CUDA when the process has a GPU — inside a Ray task or actor, when Ray assigned it one
(``ray.get_gpu_ids()``; Ray also narrows ``CUDA_VISIBLE_DEVICES`` to those) — else CPU.
"""
from __future__ import annotations

from typing import Literal

AUTO, CPU, CUDA = "auto", "cpu", "cuda"
DEVICES = (AUTO, CPU, CUDA)
Device = Literal["auto", "cpu", "cuda"]  # a config field's type; the same names as DEVICES


def ray_assigned_gpus() -> list | None:
    """The GPU ids Ray assigned to this Ray worker process, or None outside a Ray worker (a driver or
    no Ray): there, every visible GPU is this process's."""
    import sys

    if "ray" not in sys.modules:  # never imported: not a Ray worker, and importing it costs ~1 s
        return None
    import ray

    if not ray.is_initialized() or ray.get_runtime_context().worker.mode != ray.WORKER_MODE:
        return None
    return list(ray.get_gpu_ids())


def resolve_device(device: str = AUTO) -> str:
    """``cpu`` or ``cuda`` for ``device`` in ``DEVICES``: ``auto`` is CUDA when CUDA is available and,
    in a Ray worker, Ray gave it a GPU; ``ValueError`` for an unknown name or a CUDA this process
    does not have."""
    import torch

    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    assigned = ray_assigned_gpus()
    has_gpu = torch.cuda.is_available() and (assigned is None or len(assigned) > 0)
    if device == CUDA and not has_gpu:
        raise ValueError("device 'cuda' requested but CUDA is not available"
                         + (" (Ray assigned this worker no GPU: give it num_gpus)" if assigned == [] else ""))
    return CUDA if device == CUDA or (device == AUTO and has_gpu) else CPU
