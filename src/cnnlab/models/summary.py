"""`cnnlab summary`: layers, output shapes, parameters and FLOPs of a model for one input size.

FLOPs come from `torch.utils.flop_counter.FlopCounterMode`, which counts a multiply-add as 2 FLOPs
(convolutions and matrix products; element-wise ops are not counted), per forward pass of one image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class LayerRow:
    name: str
    kind: str
    output_shape: tuple[int, ...]
    parameters: int
    flops: int


@dataclass(frozen=True)
class ModelSummary:
    rows: list[LayerRow]
    input_shape: tuple[int, ...]
    parameters: int
    trainable_parameters: int
    flops: int  # forward, one image

    @property
    def training_flops(self) -> int:
        """One training image: the forward pass, the gradients of every layer's weights (one forward's cost
        each) and of every layer's input but the first's, which nothing needs: the images need no gradient
        (Kaplan et al. 2020, section 2.1: backward = 2 x forward, less that first layer here). Frozen layers
        (model.freeze) are counted as trained: an upper bound for them."""
        first = next((row.flops for row in self.rows if row.flops > 0), 0)
        return 3 * self.flops - first


def summarize(model: nn.Module, input_shape: tuple[int, int, int]) -> ModelSummary:
    """Run one forward pass of a single image on the CPU, recording each leaf module's output shape."""
    shapes: dict[str, tuple[int, ...]] = {}
    leaves = {name: m for name, m in model.named_modules() if name and not list(m.children())}
    hooks = [m.register_forward_hook(_recorder(shapes, name)) for name, m in leaves.items()]
    # imported here: it loads torch's decompositions and triton, ~0.5 s of every command's start-up otherwise
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), counter:
            model(torch.zeros(1, *input_shape, device=next(model.parameters()).device))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    per_module = counter.get_flop_counts()
    prefix = type(model).__name__
    rows = [
        LayerRow(name, type(m).__name__, shapes.get(name, ()), sum(p.numel() for p in m.parameters(recurse=False)),
                 int(sum(per_module.get(f"{prefix}.{name}", {}).values())))
        for name, m in leaves.items()
    ]
    return ModelSummary(
        rows=rows,
        input_shape=tuple(input_shape),
        parameters=sum(p.numel() for p in model.parameters()),
        trainable_parameters=sum(p.numel() for p in model.parameters() if p.requires_grad),
        flops=int(counter.get_total_flops()),
    )


def _recorder(shapes: dict[str, tuple[int, ...]], name: str):
    def hook(module: nn.Module, inputs: object, output: object) -> None:
        if isinstance(output, torch.Tensor):
            shapes[name] = tuple(output.shape[1:])

    return hook


def describe(
    name: str,
    options: Sequence[str] = (),
    input_shape: tuple[int, int, int] | None = None,
    num_classes: int | None = None,
) -> ModelSummary:
    """Summary of a registered model, options given as `key=value` strings (validated like a config),
    built on the meta device: no memory and no arithmetic, so even large models answer instantly."""
    from ..config import parse_overrides, resolve
    from . import MODELS, build_model

    layer = parse_overrides([item if item.startswith("model.") else f"model.{item}" for item in options])
    layer["model.name"] = (name, "model name")
    config = resolve(layer).model
    info = MODELS.get(name)
    channels, height, _ = input_shape or info.input_size
    with torch.device("meta"):
        model = build_model(name, config.options, num_classes=num_classes or info.num_classes,
                            in_channels=channels, image_size=height)
        return summarize(model, (channels, height, input_shape[2] if input_shape else info.input_size[2]))
