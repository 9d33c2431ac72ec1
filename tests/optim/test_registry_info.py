"""optim/registry.py: what an optimizer's or a schedule's metadata says about its options. Every registration
runs these builders at import time, before any test; these tests call them directly so that a mistake in them
fails a test (mutation testing re-runs only the tests that call a function)."""

from __future__ import annotations

import inspect

import torch

from cnnlab.optim.registry import OptimInfo, ScheduleInfo, make_optim_info, make_schedule_info


def tiny_sgd(params, *, lr: float, weight_decay: float = 0.0, momentum: float = 0.9, dampening: float = 0.0,
             nesterov: bool = False) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, momentum=momentum, dampening=dampening,
                           nesterov=nesterov)


def tiny_step(epoch: float, *, epochs: int, history: list[float] | None = None, step_size: int, gamma: float = 0.1,
              **unused) -> float:
    return gamma ** (epoch // step_size)


def test_an_optimizers_options_are_its_keywords_less_params_lr_and_weight_decay() -> None:
    info = make_optim_info(tiny_sgd, name="tiny", default_lr=0.05, paper="Robbins and Monro 1951",
                           description="plain")
    assert isinstance(info, OptimInfo)
    assert (info.name, info.factory, info.default_lr, info.paper, info.description) == (
        "tiny", tiny_sgd, 0.05, "Robbins and Monro 1951", "plain")
    assert info.default_weight_decay == 5e-4  # not given: the dataclass's default
    assert list(info.options) == ["momentum", "dampening", "nesterov"]
    momentum, nesterov = info.options["momentum"], info.options["nesterov"]
    assert (momentum.name, momentum.default, momentum.annotation) == ("momentum", 0.9, float)
    assert (nesterov.default, nesterov.annotation) == (False, bool)
    assert make_optim_info(tiny_sgd, name="tiny", default_lr=0.1, default_weight_decay=0.0).default_weight_decay == 0.0


def test_a_schedules_options_are_its_keywords_less_epoch_epochs_and_history() -> None:
    info = make_schedule_info(tiny_step, name="tiny_step", description="steps", needs_history=True)
    assert isinstance(info, ScheduleInfo)
    assert (info.name, info.factor, info.description, info.needs_history) == ("tiny_step", tiny_step, "steps", True)
    assert list(info.options) == ["step_size", "gamma"]  # **unused is no option
    assert info.options["step_size"].default is inspect.Parameter.empty and info.options["step_size"].required
    assert (info.options["gamma"].default, info.options["gamma"].annotation) == (0.1, float)
    plain = make_schedule_info(tiny_step, name="plain")
    assert (plain.description, plain.needs_history) == ("", False)
