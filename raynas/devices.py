"""Compute-device names, one home for every layer (recipes, training, serving, latency tables).

``auto`` means CUDA when the process has a GPU (on a cluster: when Ray assigned it one), else CPU.
"""
from __future__ import annotations

from typing import Literal

AUTO, CPU, CUDA = "auto", "cpu", "cuda"
DEVICES = (AUTO, CPU, CUDA)
Device = Literal["auto", "cpu", "cuda"]  # a config field's type; the same names as DEVICES
