"""ZFNet: Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014 (arXiv 2013),
figure 3: AlexNet's layout with a 7x7 stride-2 first layer instead of 11x11 stride 4 (their deconvnet
showed 11x11/4 aliasing and dead filters) and a dense conv2 (5x5 stride 2):

224x224 -> conv1 96@7x7/2 (110x110) -> ReLU -> maxpool 3/2 (55x55) -> contrast norm -> conv2 256@5x5/2
(26x26) -> ReLU -> maxpool 3/2 (13x13) -> contrast norm -> conv3 384@3x3 -> conv4 384@3x3 -> conv5 256@3x3
-> maxpool 3/2 (6x6) -> FC6 4096 -> FC7 4096 -> output, dropout 0.5 in FC6/FC7.

"Contrast normalisation" is AlexNet's local response normalisation here (the paper refers to it without
constants; we use AlexNet's). Weights N(0, 0.01), biases 0 (section 3 of the paper). Small inputs: conv1
becomes 3x3 stride 1 and conv2 stride 1.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal

from torch import nn

from .base import FeaturesClassifier, small_stem
from .layers import LocalResponseNorm
from .registry import MODELS


@MODELS.register("zfnet", input_size=(3, 224, 224), num_classes=1000, paper="Zeiler & Fergus 2013",
                 description="ZFNet: 7x7 stride-2 first layer, 3x3 overlapping pooling, contrast norm")
def zfnet(*, num_classes: int, in_channels: int, image_size: int, stem: Literal["auto", "imagenet", "small"] = "auto",
          dropout: float = 0.5) -> nn.Module:
    small = small_stem(stem, image_size)
    conv1 = nn.Conv2d(in_channels, 96, 3, 1, 1) if small else nn.Conv2d(in_channels, 96, 7, 2, 1)
    features = nn.Sequential(OrderedDict([
        ("conv1", conv1), ("relu1", nn.ReLU(inplace=True)), ("pool1", nn.MaxPool2d(3, 2, padding=1)),
        ("norm1", LocalResponseNorm()),
        ("conv2", nn.Conv2d(96, 256, 5, 1 if small else 2, padding=2 if small else 0)),
        ("relu2", nn.ReLU(inplace=True)), ("pool2", nn.MaxPool2d(3, 2, padding=1)), ("norm2", LocalResponseNorm()),
        ("conv3", nn.Conv2d(256, 384, 3, padding=1)), ("relu3", nn.ReLU(inplace=True)),
        ("conv4", nn.Conv2d(384, 384, 3, padding=1)), ("relu4", nn.ReLU(inplace=True)),
        ("conv5", nn.Conv2d(384, 256, 3, padding=1)), ("relu5", nn.ReLU(inplace=True)),
        ("pool5", nn.MaxPool2d(3, 2)),
    ]))
    classifier = nn.Sequential(OrderedDict([
        ("fc6", nn.Linear(256 * 6 * 6, 4096)), ("relu6", nn.ReLU(inplace=True)), ("drop6", nn.Dropout(dropout)),
        ("fc7", nn.Linear(4096, 4096)), ("relu7", nn.ReLU(inplace=True)), ("drop7", nn.Dropout(dropout)),
        ("fc8", nn.Linear(4096, num_classes)),
    ]))
    model = FeaturesClassifier(features, classifier, nn.AdaptiveAvgPool2d((6, 6)))
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(module.weight, 0.0, 0.01)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return model
