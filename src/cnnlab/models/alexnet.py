"""AlexNet: Krizhevsky, Sutskever, Hinton, "ImageNet Classification with Deep Convolutional Neural
Networks", NIPS 2012, section 3 and figure 2.

`alexnet` is the paper's network on 227x227 input (the paper says 224; 227 is what makes conv1's 11x11
stride-4 output 55x55): conv1 96@11x11/4 -> ReLU -> LRN -> maxpool 3/2 (overlapping) -> conv2 256@5x5 ->
ReLU -> LRN -> maxpool 3/2 -> conv3 384@3x3 -> conv4 384@3x3 -> conv5 256@3x3 -> maxpool 3/2 ->
FC6 4096 -> FC7 4096 -> FC8, ReLU everywhere, dropout 0.5 on the outputs of FC6 and FC7. The paper's
two-GPU split is kept as grouped convolutions (groups=2 in conv2, conv4 and conv5, whose kernels "are
connected only to those kernel maps in the previous layer which reside on the same GPU"): 60,965,224
parameters for 1000 classes, the paper's "60 million". LRN: k=2, n=5, alpha=1e-4, beta=0.75 (section 3.3).
Initialisation (section 5): weights N(0, 0.01); biases 1 in conv2, conv4, conv5, FC6 and FC7, else 0.
An adaptive average pool to 6x6 before FC6 (torchvision's) lets any input size reach FC6 with 9,216 values.

`alexnet_bn`: batch normalisation after every convolution instead of LRN, He initialisation: the
"AlexNet-BN" You, Gitman & Ginsburg 2017 trained with LARS at large batch sizes.
`alexnet_tv`: torchvision's single-tower variant (64-192-384-256-256 filters, from Krizhevsky's "One
weird trick" 2014), with torchvision's module names, so its state dicts load directly.

Small inputs (stem="small", or "auto" below 64 px): conv1 becomes 3x3 stride 1, so 28-32 px images keep
enough resolution for three 3/2 poolings.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal

from torch import nn

from ..errors import ConfigError
from .base import FeaturesClassifier, small_stem
from .layers import LocalResponseNorm
from .registry import MODELS

Stem = Literal["auto", "imagenet", "small"]


def _conv_block(name: str, conv: nn.Conv2d, batch_norm: bool, lrn: bool) -> list[tuple[str, nn.Module]]:
    layers: list[tuple[str, nn.Module]] = [(name, conv)]
    if batch_norm:
        layers.append((f"bn{name[-1]}", nn.BatchNorm2d(conv.out_channels)))
    layers.append((f"relu{name[-1]}", nn.ReLU(inplace=True)))
    if lrn:
        layers.append((f"lrn{name[-1]}", LocalResponseNorm(5, 1e-4, 0.75, 2.0)))
    return layers


def _alexnet(num_classes: int, in_channels: int, image_size: int, stem: str, groups: int, dropout: float,
             lrn: bool, batch_norm: bool, init: str) -> FeaturesClassifier:
    if 96 % groups or 256 % groups or 384 % groups:
        raise ConfigError(f"model.groups={groups} must divide 96, 256 and 384 (the paper uses 2)")
    small = small_stem(stem, image_size)
    conv1 = nn.Conv2d(in_channels, 96, 3, 1, 1) if small else nn.Conv2d(in_channels, 96, 11, 4)
    bias = not batch_norm
    layers = [
        *_conv_block("conv1", conv1, batch_norm, lrn), ("pool1", nn.MaxPool2d(3, 2)),
        *_conv_block("conv2", nn.Conv2d(96, 256, 5, padding=2, groups=groups, bias=bias), batch_norm, lrn),
        ("pool2", nn.MaxPool2d(3, 2)),
        *_conv_block("conv3", nn.Conv2d(256, 384, 3, padding=1, bias=bias), batch_norm, False),
        *_conv_block("conv4", nn.Conv2d(384, 384, 3, padding=1, groups=groups, bias=bias), batch_norm, False),
        *_conv_block("conv5", nn.Conv2d(384, 256, 3, padding=1, groups=groups, bias=bias), batch_norm, False),
        ("pool5", nn.MaxPool2d(3, 2)),
    ]
    classifier = nn.Sequential(OrderedDict([
        ("fc6", nn.Linear(256 * 6 * 6, 4096)), ("relu6", nn.ReLU(inplace=True)), ("drop6", nn.Dropout(dropout)),
        ("fc7", nn.Linear(4096, 4096)), ("relu7", nn.ReLU(inplace=True)), ("drop7", nn.Dropout(dropout)),
        ("fc8", nn.Linear(4096, num_classes)),
    ]))
    model = FeaturesClassifier(nn.Sequential(OrderedDict(layers)), classifier, nn.AdaptiveAvgPool2d((6, 6)))
    (_paper_init if init == "paper" else _he_init)(model)
    return model


def _paper_init(model: FeaturesClassifier) -> None:
    ones = {"features.conv2", "features.conv4", "features.conv5", "classifier.fc6", "classifier.fc7"}
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(module.weight, 0.0, 0.01)
            if module.bias is not None:
                nn.init.constant_(module.bias, 1.0 if name in ones else 0.0)


def _he_init(model: nn.Module) -> None:
    from .base import init_like_torchvision

    init_like_torchvision(model)


@MODELS.register("alexnet", input_size=(3, 227, 227), num_classes=1000, paper="Krizhevsky et al. 2012",
                 description="AlexNet as in the paper: 2-tower grouped convs, LRN, overlapping pooling, 61M params")
def alexnet(*, num_classes: int, in_channels: int, image_size: int, stem: Stem = "auto", groups: int = 2,
            dropout: float = 0.5, lrn: bool = True, init: Literal["paper", "he"] = "paper") -> nn.Module:
    return _alexnet(num_classes, in_channels, image_size, stem, groups, dropout, lrn, False, init)


@MODELS.register("alexnet_bn", input_size=(3, 227, 227), num_classes=1000, paper="You, Gitman & Ginsburg 2017",
                 description="AlexNet-BN (the network of the LARS paper): batch norm after every conv, no LRN")
def alexnet_bn(*, num_classes: int, in_channels: int, image_size: int, stem: Stem = "auto", groups: int = 2,
               dropout: float = 0.5) -> nn.Module:
    return _alexnet(num_classes, in_channels, image_size, stem, groups, dropout, False, True, "he")


@MODELS.register("alexnet_tv", input_size=(3, 224, 224), num_classes=1000, paper="Krizhevsky 2014 (torchvision)",
                 description="torchvision's single-tower AlexNet (64-192-384-256-256), same names and params")
def alexnet_tv(*, num_classes: int, in_channels: int, image_size: int, stem: Stem = "auto",
               dropout: float = 0.5) -> nn.Module:
    small = small_stem(stem, image_size)
    features = nn.Sequential(
        nn.Conv2d(in_channels, 64, 3, 1, 1) if small else nn.Conv2d(in_channels, 64, 11, 4, 2),
        nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
    )
    classifier = nn.Sequential(
        nn.Dropout(dropout), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
        nn.Dropout(dropout), nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Linear(4096, num_classes),
    )
    return FeaturesClassifier(features, classifier, nn.AdaptiveAvgPool2d((6, 6)))
