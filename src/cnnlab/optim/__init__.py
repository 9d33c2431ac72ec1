"""Optimizers and learning-rate schedules: registries, metadata, and the factory."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from ..config import OptimConfig, ScheduleConfig
from . import schedules, torch_optimizers  # noqa: F401  (registration)
from .registry import OPTIMIZERS, SCHEDULES, OptimInfo, ScheduleInfo


def build_optimizer(config: OptimConfig, params: Iterable[torch.nn.Parameter] | Iterable[dict]
                    ) -> torch.optim.Optimizer:
    info = OPTIMIZERS.get(config.name)
    optimizer = info.factory(params, lr=config.lr, weight_decay=config.weight_decay, **config.options)
    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"])
    return optimizer


def lr_factor(config: ScheduleConfig, epoch: float, epochs: int) -> float:
    return SCHEDULES.get(config.name).factor(epoch, epochs=epochs, **config.options)


def apply_schedule(optimizer: torch.optim.Optimizer, factor: float) -> None:
    """Set every group's lr to its initial lr times `factor` (a Python float: no device sync)."""
    for group in optimizer.param_groups:
        group["lr"] = group["initial_lr"] * factor


__all__ = ["OPTIMIZERS", "SCHEDULES", "OptimInfo", "ScheduleInfo", "apply_schedule", "build_optimizer", "lr_factor"]
