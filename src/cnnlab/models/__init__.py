"""Architectures: one module per family, each registering builders in `MODELS`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..config.components import Component, register_component
from . import alexnet, cifar_resnet, convnet, external, lenet, mlp, resnet, vgg, zfnet  # noqa: F401  (registration)
from .layers import ACTIVATIONS
from .registry import MODELS, InputTooSmall, ModelInfo, output_shape

register_component(Component("model", MODELS.get))


def build_model(
    name: str, options: Mapping[str, Any], *, num_classes: int, in_channels: int, image_size: int
) -> nn.Module:
    """Build a registered architecture with its resolved options."""
    info = MODELS.get(name)
    return info.builder(num_classes=num_classes, in_channels=in_channels, image_size=image_size, **options)


def model_fits(name: str, options: Mapping[str, Any], in_channels: int, image_size: int) -> bool:
    """Whether the model accepts `image_size` inputs (built and run on the meta device: free)."""
    try:
        with torch.device("meta"):
            model = build_model(name, options, num_classes=2, in_channels=in_channels, image_size=image_size)
            model.eval()(torch.empty(1, in_channels, image_size, image_size))  # eval: BN takes a batch of one
    except (InputTooSmall, RuntimeError, ValueError):
        return False
    return True


def check_options(name: str, options: Mapping[str, Any]) -> None:
    """Build the model on the meta device (free) so that an option the builder rejects (an unknown
    activation, a bad layer list) is reported when a study or search is planned, not at its n-th run."""
    channels, size, _ = MODELS.get(name).input_size
    try:
        with torch.device("meta"):
            build_model(name, options, num_classes=10, in_channels=channels, image_size=size)
    except InputTooSmall:
        pass  # the real data decides the input size


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


__all__ = ["ACTIVATIONS", "MODELS", "InputTooSmall", "ModelInfo", "build_model", "check_options", "count_parameters",
           "model_fits", "output_shape"]
