"""The model registry and its entries.

A builder is a keyword-only function `(*, num_classes, in_channels, image_size, **options) -> nn.Module`;
its options (with their type hints and defaults) are the `model.*` config keys of that architecture.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import ConfigError
from ..options import OptionSpec, options_from_signature
from ..registry import Registry

BUILDER_ARGS = ("num_classes", "in_channels", "image_size")


class InputTooSmall(ConfigError):
    """The input is too small for the network's valid convolutions and pooling."""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    builder: Callable[..., nn.Module]
    input_size: tuple[int, int, int]  # (C, H, W) the paper used; the default when data needs a size
    num_classes: int = 10  # for `cnnlab models` and `summary` when no dataset says otherwise
    paper: str = ""
    description: str = ""
    options: dict[str, OptionSpec] = field(default_factory=dict)


def make_model_info(builder: Callable[..., nn.Module], *, name: str, **meta) -> ModelInfo:
    return ModelInfo(name=name, builder=builder, options=options_from_signature(builder, BUILDER_ARGS), **meta)


MODELS: Registry[ModelInfo] = Registry("model", make_model_info)


def output_shape(make: Callable[[], nn.Module], input_shape: tuple[int, ...], what: str) -> torch.Size:
    """The output shape of a freshly made module for one input of `input_shape`, computed on the meta
    device (no memory, no arithmetic). Raises InputTooSmall when a layer has nothing left to work on."""
    with torch.device("meta"):
        module = make().eval()  # eval: batch norm takes a batch of one
        try:
            return module(torch.empty(1, *input_shape)).shape
        except (RuntimeError, ValueError) as exc:
            raise InputTooSmall(
                f"input {'x'.join(map(str, input_shape))} is too small for {what} ({exc}). "
                "Use a larger data.image_size or fewer/smaller convolutions and pools."
            ) from None
