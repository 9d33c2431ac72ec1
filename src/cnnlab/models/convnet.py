"""The configurable small CNN of the EQ2425 Project 3 report, "Image Classification using CNNs" (KTH, 2021).

Defaults are exactly the report's network (its section 3.2), for 32x32x3 CIFAR-10 input:
  conv 5x5 valid 24 -> ReLU -> maxpool 2x2/2 -> conv 3x3 valid 48 -> ReLU -> maxpool 2x2/2 ->
  conv 3x3 valid 96 -> maxpool 2x2/2 -> FC 512 -> ReLU -> FC num_classes (softmax is in the loss).
The seed lists no activation after the third convolution; `last_conv_activation=true` adds one.

Every ablation column is an option: `filters` ([64,128,256]), `fc` ([512,128] adds an FC layer of 128),
`kernel_sizes` ([7,5,3]), `activation` (leaky_relu everywhere) or `fc_activation` (leaky_relu in the FC
layers only, as the report's appendix has it), `dropout` (0.3, after each hidden FC layer; with `fc=[]`,
before the output layer),
`batch_norm` (after each convolution, before its activation, as Ioffe & Szegedy 2015 place it; the
convolution then has no bias since BN's shift replaces it). The network adapts to the input's channels
and size: the first FC layer is sized from the feature map the convolutions leave.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal

from torch import nn

from ..errors import ConfigError
from .base import FeaturesClassifier
from .layers import activation as make_activation
from .layers import pool
from .registry import MODELS, output_shape


@MODELS.register("convnet", input_size=(3, 32, 32), paper="EQ2425 small-CNN ablation (seed study)",
                 description="configurable small CNN; defaults = the seed network (24-48-96 convs, FC 512)")
def convnet(
    *,
    num_classes: int,
    in_channels: int,
    image_size: int,
    filters: tuple[int, ...] = (24, 48, 96),
    kernel_sizes: tuple[int, ...] = (5, 3, 3),
    padding: Literal["valid", "same"] = "valid",
    activation: str = "relu",
    negative_slope: float = 0.01,  # for leaky_relu
    last_conv_activation: bool = False,
    pooling: Literal["max", "avg", "none"] = "max",
    pool_size: int = 2,
    batch_norm: bool = False,
    fc: tuple[int, ...] = (512,),
    fc_activation: str | None = None,  # the hidden FC layers' own activation; None: `activation`
    dropout: float = 0.0,
    conv_dropout: float = 0.0,
) -> nn.Module:
    kernel_sizes = _per_layer(kernel_sizes, len(filters))
    _check_options(filters, kernel_sizes, dropout, conv_dropout)

    def features() -> nn.Sequential:
        layers: list[tuple[str, nn.Module]] = []
        channels = in_channels
        for i, (width, kernel) in enumerate(zip(filters, kernel_sizes), start=1):
            layers.append((f"conv{i}", nn.Conv2d(channels, width, kernel, padding=padding, bias=not batch_norm)))
            if batch_norm:
                layers.append((f"bn{i}", nn.BatchNorm2d(width)))
            if i < len(filters) or last_conv_activation:
                layers.append((f"act{i}", make_activation(activation, negative_slope)))
            if pooling != "none":
                layers.append((f"pool{i}", pool(pooling, pool_size)))
            if conv_dropout > 0:
                layers.append((f"drop{i}", nn.Dropout(conv_dropout)))
            channels = width
        return nn.Sequential(OrderedDict(layers))

    shape = output_shape(features, (in_channels, image_size, image_size), "convnet")
    return FeaturesClassifier(features(), _classifier(shape[1:].numel(), fc, num_classes,
                                                      fc_activation or activation, negative_slope, dropout))


def _classifier(inputs: int, hidden: tuple[int, ...], num_classes: int, activation: str,
                negative_slope: float, dropout: float) -> nn.Sequential:
    layers: list[tuple[str, nn.Module]] = []
    for i, width in enumerate(hidden, start=1):
        layers += [(f"fc{i}", nn.Linear(inputs, width)), (f"fc_act{i}", make_activation(activation, negative_slope))]
        if dropout > 0:
            layers.append((f"fc_drop{i}", nn.Dropout(dropout)))
        inputs = width
    if not hidden and dropout > 0:  # no hidden FC layer: dropout on the flattened features (Keras's MNIST convnet)
        layers.append(("drop", nn.Dropout(dropout)))
    layers.append(("output", nn.Linear(inputs, num_classes)))
    return nn.Sequential(OrderedDict(layers))


def _per_layer(values: tuple[int, ...], count: int) -> tuple[int, ...]:
    if len(values) == 1:
        return tuple(values) * count  # one kernel size for every layer
    if len(values) != count:
        raise ConfigError(
            f"model.kernel_sizes has {len(values)} values but model.filters has {count} layers; "
            "give one kernel size per layer, or a single one for all"
        )
    return tuple(values)


def _check_options(filters: tuple[int, ...], kernels: tuple[int, ...], dropout: float, conv_dropout: float) -> None:
    if not filters or min(filters) <= 0:
        raise ConfigError(f"model.filters must be positive channel counts, got {list(filters)}")
    if min(kernels) <= 0:
        raise ConfigError(f"model.kernel_sizes must be positive, got {list(kernels)}")
    for key, value in (("dropout", dropout), ("conv_dropout", conv_dropout)):
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"model.{key} must be in [0, 1), got {value}")
