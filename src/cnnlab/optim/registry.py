"""Optimizer and schedule registries with their metadata (as timm's `OptimInfo`).

An optimizer factory is `(params, *, lr, weight_decay, **options) -> torch.optim.Optimizer`; its
keyword options (type hints and defaults) are the `optim.*` keys of that optimizer, read by the config,
the CLI help and (later) the search space. A schedule is a pure function of training progress.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..options import OptionSpec, options_from_signature
from ..registry import Registry

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class OptimInfo:
    name: str
    factory: Callable[..., torch.optim.Optimizer]
    default_lr: float
    default_weight_decay: float = 5e-4
    paper: str = ""
    description: str = ""
    options: dict[str, OptionSpec] = field(default_factory=dict)


def make_optim_info(factory: Callable[..., torch.optim.Optimizer], *, name: str, **meta) -> OptimInfo:
    options = options_from_signature(factory, ("params", "lr", "weight_decay"))
    return OptimInfo(name=name, factory=factory, options=options, **meta)


@dataclass(frozen=True)
class ScheduleInfo:
    """`factor(epoch, *, epochs, **options)`: the learning-rate multiplier at (fractional) `epoch`."""

    name: str
    factor: Callable[..., float]
    description: str = ""
    needs_history: bool = False  # reads the per-epoch metric history (reduce-on-plateau)
    options: dict[str, OptionSpec] = field(default_factory=dict)


def make_schedule_info(factor: Callable[..., float], *, name: str, **meta) -> ScheduleInfo:
    options = options_from_signature(factor, ("epoch", "epochs", "history"))
    return ScheduleInfo(name=name, factor=factor, options=options, **meta)


OPTIMIZERS: Registry[OptimInfo] = Registry("optimizer", make_optim_info)
SCHEDULES: Registry[ScheduleInfo] = Registry("schedule", make_schedule_info)
