"""Fixtures for supernet tests: one torch thread (tiny tensors; oversubscribed cores make more
threads slower), small spaces and the digits splits."""
from __future__ import annotations

import pytest
import torch

from raynas.space.mbv3 import MBV3Space

# A small elastic space that trains on digits in seconds (two stages, depth 1-2, kernel 3/5).
TINY_MBV3 = dict(depths=[1, 2], kernel_sizes=[3, 5], expand_ratios=[2, 3], stage_widths=[8, 16],
                 stage_strides=[1, 2], stem_width=8, head_width=32)
CIFAR_MBV3 = dict(resolution=32, in_channels=3)


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def mbv3_space() -> MBV3Space:
    return MBV3Space()


@pytest.fixture(scope="session")
def tiny_space() -> MBV3Space:
    return MBV3Space(MBV3Space.Config(**TINY_MBV3))


@pytest.fixture(scope="session")
def digits():
    from raynas.data import load_dataset

    return load_dataset("digits")
