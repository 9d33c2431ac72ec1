"""ResNet for ImageNet-sized input: He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition",
CVPR 2016, table 1: ResNet-18/34 (basic blocks of two 3x3 convolutions) and ResNet-50/101/152 (bottleneck
blocks 1x1 -> 3x3 -> 1x1 with 4x expansion), a 7x7/2 stem with 3x3/2 max pooling, four stages at 64, 128,
256, 512 base widths, global average pooling, one FC layer. Shortcuts are identities, or 1x1 projections
with batch norm where the shape changes (the paper's option B).

`plain18`/`plain34` are the same networks without shortcuts (the paper's plain baselines, figure 4).

Module names, layout and parameter counts are torchvision's (ResNet-18: 11,689,512; ResNet-50:
25,557,032), so torchvision state dicts load directly. Like torchvision ("ResNet v1.5") the bottleneck
strides in its 3x3 convolution, not in the first 1x1 as the paper does; the parameter count is the same.
`zero_init_residual` starts the last BN of each block at zero, so each block begins as an identity (Goyal
et al. 2017, "Accurate, large minibatch SGD"). Small inputs (stem="small", or "auto" below 64 px): a 3x3
stride-1 stem without max pooling, the usual CIFAR adaptation.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from .base import he_init, small_stem
from .registry import MODELS


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 shortcut: bool = True) -> None:
        super().__init__()
        self.shortcut = shortcut
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        if self.shortcut:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)

    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn2


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 shortcut: bool = True) -> None:
        super().__init__()
        self.shortcut = shortcut
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None or not self.shortcut else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity if self.shortcut else self.bn3(self.conv3(out)))

    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn3


class ResNet(nn.Module):
    def __init__(self, block: type[BasicBlock | Bottleneck], layers: tuple[int, ...], num_classes: int,
                 in_channels: int, small: bool,
                 zero_init_residual: bool, shortcuts: bool = True) -> None:
        super().__init__()
        self.shortcuts = shortcuts
        self.inplanes = 64
        self.conv1 = (nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False) if small
                      else nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False))
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity() if small else nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._stage(block, 64, layers[0], 1)
        self.layer2 = self._stage(block, 128, layers[1], 2)
        self.layer3 = self._stage(block, 256, layers[2], 2)
        self.layer4 = self._stage(block, 512, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        he_init(self)
        if zero_init_residual and shortcuts:
            for module in self.modules():
                if isinstance(module, (BasicBlock, Bottleneck)):
                    nn.init.zeros_(module.last_bn().weight)

    def _stage(self, block: type[BasicBlock | Bottleneck], planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if self.shortcuts and (stride != 1 or self.inplanes != planes * block.expansion):
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample, self.shortcuts)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, shortcut=self.shortcuts) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


DEPTHS: dict[int, tuple[type[BasicBlock | Bottleneck], tuple[int, ...]]] = {
          18: (BasicBlock, (2, 2, 2, 2)), 34: (BasicBlock, (3, 4, 6, 3)), 50: (Bottleneck, (3, 4, 6, 3)),
          101: (Bottleneck, (3, 4, 23, 3)), 152: (Bottleneck, (3, 8, 36, 3))}


def _register(depth: int) -> None:
    block, layers = DEPTHS[depth]

    def builder(*, num_classes: int, in_channels: int, image_size: int,
                stem: Literal["auto", "imagenet", "small"] = "auto", zero_init_residual: bool = False) -> nn.Module:
        return ResNet(block, layers, num_classes, in_channels, small_stem(stem, image_size), zero_init_residual)

    builder.__name__ = f"resnet{depth}"
    kind = "basic" if block is BasicBlock else "bottleneck"
    description = f"ResNet-{depth} ({kind} blocks {'-'.join(map(str, layers))}), ImageNet layout"
    MODELS.register(f"resnet{depth}", input_size=(3, 224, 224), num_classes=1000, paper="He et al. 2016",
                    description=description)(builder)


for _depth in DEPTHS:
    _register(_depth)


def _register_plain(depth: int) -> None:
    """plain-18/34 of He et al. figure 4 and table 2: ResNet-18/34's layers without any shortcut (no
    identity, no projection), the nets whose training error rises with depth (the degradation problem)."""
    block, layers = DEPTHS[depth]

    def builder(*, num_classes: int, in_channels: int, image_size: int,
                stem: Literal["auto", "imagenet", "small"] = "auto") -> nn.Module:
        return ResNet(block, layers, num_classes, in_channels, small_stem(stem, image_size), False, shortcuts=False)

    builder.__name__ = f"plain{depth}"
    MODELS.register(f"plain{depth}", input_size=(3, 224, 224), num_classes=1000, paper="He et al. 2016, figure 4",
                    description=f"plain-{depth}: ResNet-{depth} without shortcuts (degradation study)")(builder)


for _depth in (18, 34):
    _register_plain(_depth)
