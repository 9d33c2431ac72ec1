"""Optimizers and learning-rate schedules: registries, metadata, parameter groups and the factory.

Adding an optimizer is one file: a module that registers a factory in OPTIMIZERS, imported below.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

from ..config import OptimConfig, ScheduleConfig
from ..config.components import Component, register_component
from . import aggmo, lamb, lars, qhadam, schedules, torch_optimizers  # noqa: F401  (registration)
from .registry import OPTIMIZERS, SCHEDULES, OptimInfo, ScheduleInfo

# an optimizer brings its own default learning rate and weight decay (lr per batch, not per image)
register_component(Component("optim", OPTIMIZERS.get, defaults=lambda info: {
    "lr": info.default_lr, "weight_decay": info.default_weight_decay}))
register_component(Component("schedule", SCHEDULES.get))


def param_groups(model: nn.Module, config: OptimConfig,
                 head: Iterable[torch.nn.Parameter] = ()) -> list[dict[str, Any]]:
    """Trainable parameters grouped by (head or backbone) x (decayed or not). Biases and normalisation
    weights (one-dimensional tensors) skip weight decay when `optim.no_decay_bias_norm`; the backbone's
    learning rate is `optim.backbone_lr_factor` x the head's (fine-tuning), the head being `head` (the
    output layer's parameters: train.build finds them). Frozen parameters are left out."""
    head_ids = {id(p) for p in head}
    groups: dict[tuple[bool, bool], dict[str, Any]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        in_head = id(param) in head_ids or not head_ids  # no head named: every layer is 'the head' (lr x 1)
        no_decay = config.no_decay_bias_norm and param.dim() <= 1
        group = groups.setdefault((in_head, no_decay), {
            "params": [], "names": [], "weight_decay": 0.0 if no_decay else config.weight_decay,
            "lr": config.lr * (1.0 if in_head else config.backbone_lr_factor),
        })
        group["params"].append(param)
        group["names"].append(name)
    return list(groups.values())


def build_optimizer(config: OptimConfig, target: nn.Module | Iterable[torch.nn.Parameter],
                    head: Iterable[torch.nn.Parameter] = ()) -> torch.optim.Optimizer:
    """The optimizer of `config` over a model's parameter groups (or a plain list of tensors)."""
    info = OPTIMIZERS.get(config.name)
    params = param_groups(target, config, head) if isinstance(target, nn.Module) else list(target)
    optimizer = info.factory(params, lr=config.lr, weight_decay=config.weight_decay, **config.options)
    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"])
    return optimizer


def lr_factor(config: ScheduleConfig, epoch: float, epochs: int, history: Sequence[dict] = ()) -> float:
    """The multiplier of the base learning rate at (fractional) `epoch`: a linear warm-up from
    `warmup_start` over `warmup_epochs` (Goyal et al. 2017), then the schedule over the remaining epochs."""
    warmup = config.warmup_epochs
    if warmup > 0 and epoch < warmup:
        return config.warmup_start + (1.0 - config.warmup_start) * epoch / warmup
    info = SCHEDULES.get(config.name)
    extra = {"history": history} if info.needs_history else {}
    return info.factor(epoch - warmup, epochs=max(epochs - warmup, 1), **extra, **config.options)


def apply_schedule(optimizer: torch.optim.Optimizer, factor: float) -> None:
    """Set every group's lr to its initial lr times `factor` (a Python float: no device sync)."""
    for group in optimizer.param_groups:
        group["lr"] = group["initial_lr"] * factor


__all__ = ["OPTIMIZERS", "SCHEDULES", "OptimInfo", "ScheduleInfo", "apply_schedule", "build_optimizer",
           "lr_factor", "param_groups"]
