"""One supernet-training trial, built from a plain (Tune) config dict.

``SupernetTrialConfig`` names the space, supernet, sampling rule and dataset (each with its own
config mapping, checked against that component's ``Config``) and the ``TrainConfig``. ``build_trial``
builds them all and checks that the network's input channels, resolution and classes match the data.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from torch import nn

from raynas.data import Splits, load_dataset
from raynas.space import SPACES, SearchSpace
from raynas.space.base import Arch
from raynas.supernet.base import build_supernet
from raynas.supernet.sampling import SANDWICH, SamplingRule, build_sampler
from raynas.supernet.train import TrainConfig, reference_archs, select_device
from raynas.typed import bounded, from_dict

SHAPE_FIELDS = ("in_channels", "resolution", "num_classes")


@dataclasses.dataclass
class SupernetTrialConfig:
    """What to train: ``supernet`` defaults to the space's name; ``eval_random_archs`` seeded uniform
    archs are tracked on the val split each epoch besides the space's largest/smallest."""

    space: str = "mbv3"
    space_config: dict[str, Any] = dataclasses.field(default_factory=dict)
    supernet: str = ""
    supernet_config: dict[str, Any] = dataclasses.field(default_factory=dict)
    sampling: str = SANDWICH
    sampling_config: dict[str, Any] = dataclasses.field(default_factory=dict)
    dataset: str = "digits"
    dataset_config: dict[str, Any] = dataclasses.field(default_factory=dict)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    eval_random_archs: int = bounded(0, ge=0)


@dataclasses.dataclass
class SupernetTrial:
    config: SupernetTrialConfig
    space: SearchSpace
    model: nn.Module
    rule: SamplingRule
    splits: Splits
    eval_archs: dict[str, Arch]


def check_shapes(splits: Splits, *configs: tuple[str, Any]) -> None:
    """``ValueError`` when a component config's in_channels/resolution/num_classes contradicts the data."""
    for where, cfg in configs:
        for name in SHAPE_FIELDS:
            value = getattr(cfg, name, None)
            if value is not None and value != getattr(splits, name):
                raise ValueError(f"{where}.{name} is {value} but the dataset has {getattr(splits, name)}")


def build_trial(config: Mapping[str, Any] | SupernetTrialConfig) -> SupernetTrial:
    """Build every component of the trial; the model is on ``select_device(train.device)``."""
    cfg = config if isinstance(config, SupernetTrialConfig) else from_dict(SupernetTrialConfig, dict(config), "trial")
    space_cls = SPACES.get(cfg.space)
    space = space_cls(from_dict(space_cls.Config, cfg.space_config, "trial.space_config"))
    splits = load_dataset(cfg.dataset, cfg.dataset_config)
    model = build_supernet(cfg.supernet or cfg.space, space, cfg.supernet_config)
    check_shapes(splits, ("space_config", space.config), ("supernet_config", model.config))
    rule = build_sampler(cfg.sampling, space, cfg.sampling_config)
    model.to(select_device(cfg.train.device))
    eval_archs = reference_archs(space, cfg.eval_random_archs, seed=cfg.train.seed)
    return SupernetTrial(cfg, space, model, rule, splits, eval_archs)
