"""Transfer learning on any model: which layers train, a fresh head, and the penultimate features.

The modes of G. Bagnoli's Caltech-101 study ("Basics of Deep Learning", 2019: AlexNet and VGG-11),
defined on the module types so they apply to every architecture (ours, torchvision's, timm's):
- none: every layer trains (from scratch, or fine-tuning all layers when `model.weights` is given);
- conv: the convolutional part is frozen (every parameter outside nn.Linear layers: convolutions and
  their normalisation layers), the fully connected layers train;
- fc: the fully connected layers are frozen except the output layer, which is new for the new classes;
  the convolutional part trains;
- features: everything but the output layer is frozen: a linear classifier on fixed features, the same
  model as logistic regression on the exported penultimate vectors (`cnnlab features`).

Frozen parameters get requires_grad=False and are left out of the optimizer, so they stay bit-identical.
Frozen normalisation layers are also kept in eval mode (their running statistics stay fixed too), as a
frozen feature extractor should behave the same in training and at test time.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

FREEZE_MODES = ("none", "conv", "fc", "features")
_NORMS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)


def head_module(model: nn.Module) -> nn.Linear | nn.Conv2d | None:
    """The output layer: the last nn.Linear in registration order (the last conv for all-conv nets)."""
    layers: list[nn.Linear] | list[nn.Conv2d] = [m for m in model.modules() if isinstance(m, nn.Linear)] or \
             [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    return layers[-1] if layers else None


def reset_head(model: nn.Module) -> None:
    """A fresh output layer (new classes): the layer's own default initialisation."""
    head = head_module(model)
    if head is not None:
        head.reset_parameters()


def _frozen_by_mode(model: nn.Module, mode: str) -> list[nn.Module]:
    head = head_module(model)
    leaves = [m for m in model.modules() if not list(m.children()) and list(m.parameters(recurse=False))]
    if mode == "conv":
        return [m for m in leaves if not isinstance(m, nn.Linear)]
    if mode == "fc":
        return [m for m in leaves if isinstance(m, nn.Linear) and m is not head]
    if mode == "features":
        return [m for m in leaves if m is not head]
    return []


def _keep_eval(module: nn.Module, args: Any) -> None:
    module.training = False  # runs before every forward: model.train() cannot switch it back on


def freeze(model: nn.Module, mode: str) -> dict[str, int]:
    """Freeze the layers of `mode`; returns the frozen and trainable parameter counts."""
    if mode not in FREEZE_MODES:
        from ..errors import ConfigError

        raise ConfigError(f"model.freeze must be one of {', '.join(FREEZE_MODES)}, not '{mode}'")
    for module in _frozen_by_mode(model, mode):
        for param in module.parameters(recurse=False):
            param.requires_grad_(False)
        if isinstance(module, _NORMS):
            module.register_forward_pre_hook(_keep_eval)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    return {"frozen": frozen, "trainable": sum(p.numel() for p in model.parameters()) - frozen}


@torch.no_grad()
def penultimate(model: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(features, logits): the input of the output layer (AlexNet's 4096-d FC7 vector) and the output."""
    head = head_module(model)
    if head is None:
        raise ValueError("the model has no Linear or Conv2d layer: there is no output layer to read the input of")
    captured: list[torch.Tensor] = []
    handle = head.register_forward_hook(lambda module, args, output: captured.append(args[0].flatten(1)))
    try:
        logits = model(images)
    finally:
        handle.remove()
    return captured[0], logits
