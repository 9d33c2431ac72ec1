"""VGG: Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition",
ICLR 2015, table 1, configurations A (VGG-11), B (13), D (16) and E (19): stacks of 3x3 convolutions
(stride 1, padding 1) with ReLU, 2x2/2 max pooling between stages, then FC 4096 -> FC 4096 -> output with
dropout 0.5. `_bn` adds batch normalisation after every convolution (Ioffe & Szegedy 2015; not in the
paper). Layout, module names and parameter counts are torchvision's (VGG-16: 138,357,544), so torchvision
state dicts load directly; initialisation is torchvision's (the paper initialised deeper nets from A).

Small inputs (stem="small", or "auto" below 64 px): five poolings leave 1x1 of a 32x32 image, so the head
pools to 1x1 and uses FC 512 -> 512 -> output, the usual CIFAR adaptation, instead of 7x7x512 -> 4096.
"""

from __future__ import annotations

from typing import Literal

from torch import nn

from .base import FeaturesClassifier, init_like_torchvision, small_stem
from .registry import MODELS

CONFIGS = {
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg13": (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    "vgg19": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
}


def _features(config: tuple, in_channels: int, batch_norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = in_channels
    for item in config:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
            continue
        layers.append(nn.Conv2d(channels, item, 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(item))
        layers.append(nn.ReLU(inplace=True))
        channels = item
    return nn.Sequential(*layers)


def _vgg(config: str, batch_norm: bool, num_classes: int, in_channels: int, image_size: int, stem: str,
         dropout: float) -> nn.Module:
    small = small_stem(stem, image_size)
    width, pooled = (512, 1) if small else (4096, 7)
    classifier = nn.Sequential(
        nn.Linear(512 * pooled * pooled, width), nn.ReLU(inplace=True), nn.Dropout(dropout),
        nn.Linear(width, width), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(width, num_classes),
    )
    model = FeaturesClassifier(_features(CONFIGS[config], in_channels, batch_norm), classifier,
                               nn.AdaptiveAvgPool2d((pooled, pooled)))
    init_like_torchvision(model)
    return model


def _register(name: str, batch_norm: bool) -> None:
    config = name.removesuffix("_bn")
    depth = config[3:]

    def builder(*, num_classes: int, in_channels: int, image_size: int,
                stem: Literal["auto", "imagenet", "small"] = "auto", dropout: float = 0.5) -> nn.Module:
        return _vgg(config, batch_norm, num_classes, in_channels, image_size, stem, dropout)

    builder.__name__ = name
    bn = " with batch norm" if batch_norm else ""
    MODELS.register(name, input_size=(3, 224, 224), num_classes=1000, paper="Simonyan & Zisserman 2015",
                    description=f"VGG-{depth}{bn}: 3x3 conv stacks, FC 4096-4096")(builder)


for _name in CONFIGS:
    _register(_name, False)
    _register(f"{_name}_bn", True)
