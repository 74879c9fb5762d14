"""Module and optimizer state ⇄ numpy arrays, the form weights take in checkpoints and object refs.

Contract:
  * ``load_numpy(m, to_numpy(m))`` restores ``m`` exactly (parameters and buffers, e.g. BN stats);
    key or shape mismatches raise ``ValueError`` naming the keys;
  * ``weights_version(arrays)`` is a content hash: equal arrays (names, dtypes, shapes, bytes) give
    equal versions in any process; any change gives another;
  * ``save_npz``/``load_npz`` store such a dict losslessly (no pickles).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

VERSION_DIGEST_SIZE = 8
_STATE_SEP = "."


def to_numpy(module: nn.Module) -> dict[str, np.ndarray]:
    """Copies of every entry of ``module.state_dict()`` as CPU numpy arrays."""
    return {k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}


def load_numpy(module: nn.Module, arrays: dict[str, np.ndarray]) -> None:
    """Load ``arrays`` (from ``to_numpy``) into ``module`` in place, on the module's device."""
    own = module.state_dict()
    missing, unexpected = sorted(set(own) - set(arrays)), sorted(set(arrays) - set(own))
    wrong = sorted(k for k in set(own) & set(arrays) if tuple(own[k].shape) != tuple(arrays[k].shape))
    if missing or unexpected or wrong:
        raise ValueError(f"weights do not fit {type(module).__name__}: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}, wrong shape {wrong[:5]}")
    module.load_state_dict({k: _tensor(v) for k, v in arrays.items()})


def _tensor(array: np.ndarray) -> torch.Tensor:
    """A tensor sharing ``array``'s memory when writable, else a copy (object-store views are read-only)."""
    if array.flags.writeable and array.flags.c_contiguous:
        return torch.from_numpy(array)
    return torch.tensor(array)


def weights_version(arrays: dict[str, np.ndarray]) -> str:
    """Content hash of ``arrays`` (names, dtypes, shapes and bytes, in sorted-name order)."""
    h = hashlib.blake2b(digest_size=VERSION_DIGEST_SIZE)
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    np.savez(path, **arrays)


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def optimizer_to_numpy(optimizer: torch.optim.Optimizer) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Split ``optimizer.state_dict()`` into per-parameter tensors (``"<param>.<name>"`` arrays) and
    the JSON-serialisable rest (param groups, scalar state)."""
    sd = optimizer.state_dict()
    arrays: dict[str, np.ndarray] = {}
    scalars: dict[str, Any] = {}
    for pid, state in sd["state"].items():
        for name, value in state.items():
            key = f"{pid}{_STATE_SEP}{name}"
            if isinstance(value, torch.Tensor):
                arrays[key] = value.detach().cpu().numpy().copy()
            else:
                scalars[key] = value
    return arrays, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_load_numpy(optimizer: torch.optim.Optimizer, arrays: dict[str, np.ndarray],
                         meta: dict[str, Any]) -> None:
    """Inverse of ``optimizer_to_numpy``."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in list(arrays.items()) + list(meta["scalars"].items()):
        pid, _, name = key.partition(_STATE_SEP)
        state.setdefault(int(pid), {})[name] = torch.from_numpy(np.array(value)) if isinstance(
            value, np.ndarray) else value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
