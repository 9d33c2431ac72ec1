"""A multilayer perceptron: the lecture's MNIST model (CMP9137M lecture 4, after Keras's example):
Flatten -> Dense 128 ReLU -> Dense 10, 784 x 128 + 128 + 128 x 10 + 10 = 101,770 parameters. The baseline a
CNN is measured against; `hidden` sets the layers, `dropout` follows each hidden layer."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from ..errors import ConfigError
from .layers import activation as make_activation
from .registry import MODELS


class MLP(nn.Module):
    def __init__(self, layers: nn.Sequential) -> None:
        super().__init__()
        self.classifier = layers

    def forward(self, x):
        return self.classifier(x.flatten(1))


@MODELS.register("mlp", input_size=(1, 28, 28), paper="the lecture's MNIST MLP (Keras example)",
                 description="multilayer perceptron on the flattened image (default: Dense 128 ReLU, Dense 10)")
def mlp(*, num_classes: int, in_channels: int, image_size: int, hidden: tuple[int, ...] = (128,),
        activation: str = "relu", dropout: float = 0.0) -> nn.Module:
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"model.dropout must be in [0, 1), got {dropout}")
    if any(width <= 0 for width in hidden):
        raise ConfigError(f"model.hidden must be positive widths, got {list(hidden)}")
    layers: list[tuple[str, nn.Module]] = []
    inputs = in_channels * image_size * image_size
    for i, width in enumerate(hidden, start=1):
        layers += [(f"fc{i}", nn.Linear(inputs, width)), (f"act{i}", make_activation(activation))]
        if dropout > 0:
            layers.append((f"drop{i}", nn.Dropout(dropout)))
        inputs = width
    layers.append(("output", nn.Linear(inputs, num_classes)))
    return MLP(nn.Sequential(OrderedDict(layers)))
