"""Weights ⇄ numpy: exact round trips (model, npz, optimizer) and a content-hash version."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from raynas.supernet import build_supernet
from raynas.supernet.weights import (
    load_npz,
    load_numpy,
    optimizer_load_numpy,
    optimizer_to_numpy,
    save_npz,
    to_numpy,
    weights_version,
)


@torch.no_grad()
def test_round_trip_gives_identical_outputs_and_versions(tmp_path, mbv3_space):
    a = build_supernet("mbv3", mbv3_space, {"seed": 1}).eval()
    b = build_supernet("mbv3", mbv3_space, {"seed": 2}).eval()
    a.train()
    a(torch.randn(8, 1, 8, 8), mbv3_space.largest())  # non-trivial BN buffers
    a.eval()
    arrays = to_numpy(a)
    assert all(isinstance(v, np.ndarray) for v in arrays.values())
    assert weights_version(arrays) != weights_version(to_numpy(b))
    save_npz(tmp_path / "w.npz", arrays)
    loaded = load_npz(tmp_path / "w.npz")
    assert weights_version(loaded) == weights_version(arrays) == weights_version(to_numpy(a))
    load_numpy(b, loaded)
    x = torch.randn(4, 1, 8, 8)
    for arch in (mbv3_space.largest(), mbv3_space.smallest()):
        assert torch.equal(a(x, arch), b(x, arch))
    assert weights_version(to_numpy(b)) == weights_version(arrays)


def test_version_changes_with_any_change(mbv3_space):
    arrays = to_numpy(build_supernet("mbv3", mbv3_space))
    version = weights_version(arrays)
    assert len(version) == 16 and version == weights_version(dict(reversed(list(arrays.items()))))
    name = sorted(arrays)[0]
    changed = dict(arrays, **{name: arrays[name] + np.float32(1e-6)})
    renamed = {("x" + k if k == name else k): v for k, v in arrays.items()}
    retyped = dict(arrays, **{name: arrays[name].astype(np.float64)})
    assert len({version, weights_version(changed), weights_version(renamed), weights_version(retyped)}) == 4


def test_mismatched_arrays_are_rejected_by_name(mbv3_space, tiny_space):
    model = build_supernet("mbv3", mbv3_space)
    with pytest.raises(ValueError, match="wrong shape"):
        load_numpy(model, to_numpy(build_supernet("mbv3", tiny_space)))


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_optimizer_state_round_trip(tmp_path, tiny_space, kind):
    model = build_supernet("mbv3", tiny_space)
    def make(m):
        if kind == "adam":
            return torch.optim.Adam(m.parameters(), lr=0.1)
        return torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)

    opt = make(model)
    model(torch.randn(4, 1, 8, 8), tiny_space.largest()).sum().backward()
    opt.step()
    arrays, meta = optimizer_to_numpy(opt)
    save_npz(tmp_path / "opt.npz", arrays)
    clone = make(model)
    optimizer_load_numpy(clone, load_npz(tmp_path / "opt.npz"), meta)
    for (pid, state), (_, other) in zip(opt.state_dict()["state"].items(), clone.state_dict()["state"].items()):
        for key, value in state.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(other[key])), (pid, key)
