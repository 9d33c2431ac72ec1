"""Models from other libraries by name: `tv:<name>` for any torchvision classification model and
`timm:<name>` for any timm model (the optional extra `pip install 'cnnlab[timm]'`).

Both are built without pretrained weights (no hub download at run time: pass `--weights FILE` to load a
state dict saved locally) and with the head sized for the dataset: torchvision models take `num_classes`
directly; timm's `create_model` takes `num_classes` and `in_chans`. For torchvision models on gray images
the first convolution is rebuilt for the dataset's channel count.
"""

from __future__ import annotations

import functools

from torch import nn

from ..errors import ConfigError, closest
from .registry import MODELS, ModelInfo, make_model_info


def _first_conv_for(model: nn.Module, in_channels: int) -> nn.Module:
    """Replace the first Conv2d with one taking `in_channels` inputs (same geometry, fresh weights)."""
    for parent in model.modules():
        for child_name, child in parent.named_children():
            if isinstance(child, nn.Conv2d):
                if child.in_channels != in_channels:
                    # Conv2d keeps its geometry as tuple[int, ...]; its constructor is annotated for pairs
                    setattr(parent, child_name, nn.Conv2d(
                        in_channels, child.out_channels, child.kernel_size,  # type: ignore[arg-type]
                        child.stride, child.padding, child.dilation,  # type: ignore[arg-type]
                        child.groups, child.bias is not None))
                return model
    return model


@functools.cache
def _torchvision(name: str) -> ModelInfo:
    from torchvision import models

    available = models.list_models(module=models)
    if name not in available:
        guess = closest(name, available)
        hint = f"; did you mean 'tv:{guess}'?" if guess else ""
        raise ConfigError(f"torchvision has no classification model '{name}'{hint} "
                          f"({len(available)} available, e.g. {', '.join(available[:6])}, ...)")
    size = 299 if name == "inception_v3" else 224

    def builder(*, num_classes: int, in_channels: int, image_size: int) -> nn.Module:
        extra = {"aux_logits": False, "init_weights": True} if name in ("inception_v3", "googlenet") else {}
        model = models.get_model(name, weights=None, num_classes=num_classes, **extra)
        return _first_conv_for(model, in_channels)

    builder.__name__ = name
    return make_model_info(builder, name=f"tv:{name}", input_size=(3, size, size), num_classes=1000,
                           paper="torchvision", description=f"torchvision.models.{name}")


@functools.cache
def _timm(name: str) -> ModelInfo:
    try:
        import timm
    except ImportError:
        raise ConfigError(f"model 'timm:{name}' needs timm, an optional extra: pip install 'cnnlab[timm]'") from None
    if not timm.is_model(name):
        guess = closest(name, timm.list_models())
        hint = f"; did you mean 'timm:{guess}'?" if guess else ""
        raise ConfigError(f"timm has no model '{name}'{hint}")

    def builder(*, num_classes: int, in_channels: int, image_size: int) -> nn.Module:
        return timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=in_channels)

    builder.__name__ = name
    config = timm.get_pretrained_cfg(name)
    size = tuple(getattr(config, "input_size", (3, 224, 224)) or (3, 224, 224))
    return make_model_info(builder, name=f"timm:{name}", input_size=size, num_classes=1000, paper="timm",
                           description=f"timm.create_model('{name}')")


MODELS.add_provider("tv:", _torchvision)
MODELS.add_provider("timm:", _timm)
