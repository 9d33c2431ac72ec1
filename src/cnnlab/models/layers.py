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


class LocalResponseNorm(nn.Module):
    """Local response normalisation exactly as Krizhevsky et al. 2012, section 3.3:

        b[i] = a[i] / (k + alpha * sum_{j = max(0, i - n/2)}^{min(N - 1, i + n/2)} a[j]^2) ^ beta

    over n neighbouring channels, with k = 2, n = 5, alpha = 1e-4, beta = 0.75. torch.nn.LocalResponseNorm
    divides alpha by n; here alpha is the paper's."""

    def __init__(self, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0) -> None:
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        squares = x.square().unsqueeze(1)  # [B, 1, C, H, W]: pool over the channel axis
        half = self.size // 2
        squares = torch.nn.functional.pad(squares, (0, 0, 0, 0, half, (self.size - 1) - half))
        summed = torch.nn.functional.avg_pool3d(squares, (self.size, 1, 1), stride=1).squeeze(1) * self.size
        return x / (self.k + self.alpha * summed).pow(self.beta)

    def extra_repr(self) -> str:
        return f"size={self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


def activation(name: str, negative_slope: float = 0.01) -> nn.Module:
    return ACTIVATIONS.get(name)(negative_slope)


def pool(kind: str, size: int, stride: int | None = None) -> nn.Module:
    if kind == "max":
        return nn.MaxPool2d(size, stride or size)
    if kind == "avg":
        return nn.AvgPool2d(size, stride or size)
    return nn.Identity()
