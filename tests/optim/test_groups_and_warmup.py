"""Parameter groups (the output layer's rate against the backbone's, no decay on biases and norms, frozen
weights left out) and the warm-up before a schedule, by hand: the factory and `lr_factor` of optim/__init__.py."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from cnnlab.config import OptimConfig, ScheduleConfig
from cnnlab.optim import build_optimizer, lr_factor, param_groups


def network() -> nn.Sequential:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))
    model[0].bias.requires_grad_(False)  # frozen: in no group
    return model


def summary(groups: list[dict]) -> list[tuple[list[str], float, float]]:
    return [(group["names"], group["lr"], group["weight_decay"]) for group in groups]


def test_groups_split_head_from_backbone_and_decay_from_no_decay() -> None:
    model = network()
    config = OptimConfig(name="sgd", lr=0.1, weight_decay=0.01, no_decay_bias_norm=True, backbone_lr_factor=0.2)
    assert summary(param_groups(model, config, model[3].parameters())) == [
        (["0.weight"], pytest.approx(0.02), 0.01),        # backbone, decayed
        (["1.weight", "1.bias"], pytest.approx(0.02), 0.0),  # backbone, a norm layer's 1-D tensors: no decay
        (["3.weight"], 0.1, 0.01),                          # the output layer, its own rate
        (["3.bias"], 0.1, 0.0),
    ]
    # without no_decay_bias_norm every weight decays; without a head named, every layer is the head
    plain = OptimConfig(name="sgd", lr=0.1, weight_decay=0.01, backbone_lr_factor=0.2)
    assert summary(param_groups(model, plain)) == [(["0.weight", "1.weight", "1.bias", "3.weight", "3.bias"], 0.1, 0.01)]


def test_the_factory_builds_those_groups_for_a_model() -> None:
    model = network()
    config = OptimConfig(name="momentum", lr=0.1, weight_decay=0.01, no_decay_bias_norm=True, backbone_lr_factor=0.2,
                         options={"momentum": 0.9})
    optimizer = build_optimizer(config, model, model[3].parameters())
    assert [(len(g["params"]), g["lr"], g["weight_decay"], g["initial_lr"]) for g in optimizer.param_groups] == [
        (1, pytest.approx(0.02), 0.01, pytest.approx(0.02)), (2, pytest.approx(0.02), 0.0, pytest.approx(0.02)),
        (1, 0.1, 0.01, 0.1), (1, 0.1, 0.0, 0.1)]
    assert all(g["momentum"] == 0.9 for g in optimizer.param_groups)
    assert not any(p is model[0].bias for g in optimizer.param_groups for p in g["params"])
    tensors = [torch.nn.Parameter(torch.zeros(2))]  # a plain list of tensors: one group, the config's settings
    single = build_optimizer(config, tensors)
    assert [(g["lr"], g["weight_decay"]) for g in single.param_groups] == [(0.1, 0.01)]


def test_a_warm_up_of_one_epoch_then_the_schedule_over_the_rest() -> None:
    constant = ScheduleConfig(name="constant", warmup_epochs=1, warmup_start=0.1)
    assert lr_factor(constant, 0.0, 10) == pytest.approx(0.1) and lr_factor(constant, 0.5, 10) == pytest.approx(0.55)
    assert lr_factor(constant, 1.0, 10) == 1.0
    # at the warm-up's end the schedule starts from its own beginning: one-cycle's is base / div_factor
    onecycle = ScheduleConfig(name="onecycle", warmup_epochs=2)
    assert lr_factor(onecycle, 2.0, 10) == pytest.approx(1 / 25)
    # the schedule runs over the epochs left after the warm-up: 2 epochs, 1 of warm-up, half a cosine over 1
    cosine = ScheduleConfig(name="cosine", warmup_epochs=1)
    assert lr_factor(cosine, 1.5, 2) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
