"""Activations by name (a registry, so `model.activation=leaky_relu` is validated like any other name)."""

from __future__ import annotations

import torch
from torch import nn

from ..registry import Registry

ACTIVATIONS: Registry = Registry("activation")


class ScaledTanh(nn.Module):
    """LeCun et al. 1998, appendix A: f(a) = A tanh(S a) with A = 1.7159, S = 2/3, so f(+-1) = +-1 and
    the gain is about 1 at the origin."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1.7159 * torch.tanh(x * (2.0 / 3.0))


ACTIVATIONS.add("relu", lambda negative_slope: nn.ReLU(inplace=True))
ACTIVATIONS.add("leaky_relu", lambda negative_slope: nn.LeakyReLU(negative_slope, inplace=True))
ACTIVATIONS.add("elu", lambda negative_slope: nn.ELU(inplace=True))
ACTIVATIONS.add("gelu", lambda negative_slope: nn.GELU())
ACTIVATIONS.add("silu", lambda negative_slope: nn.SiLU(inplace=True))
ACTIVATIONS.add("tanh", lambda negative_slope: nn.Tanh())
ACTIVATIONS.add("scaled_tanh", lambda negative_slope: ScaledTanh())
ACTIVATIONS.add("sigmoid", lambda negative_slope: nn.Sigmoid())


def activation(name: str, negative_slope: float = 0.01) -> nn.Module:
    return ACTIVATIONS.get(name)(negative_slope)


def pool(kind: str, size: int, stride: int | None = None) -> nn.Module:
    if kind == "max":
        return nn.MaxPool2d(size, stride or size)
    if kind == "avg":
        return nn.AvgPool2d(size, stride or size)
    return nn.Identity()
