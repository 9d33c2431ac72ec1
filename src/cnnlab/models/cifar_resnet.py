"""The CIFAR-10 ResNets of He et al. 2016, section 4.2, and their plain counterparts.

6n+2 weighted layers on 32x32 input: a 3x3 convolution with 16 filters, then three stages of n basic
blocks (two 3x3 convolutions each) with 16, 32 and 64 filters on 32x32, 16x16 and 8x8 maps (the first
convolution of stages 2 and 3 strides by 2), global average pooling and a 10-way FC layer. n = 3, 5, 7, 9,
18 gives ResNet-20/32/44/56/110 (0.27M, 0.46M, 0.66M, 0.85M, 1.7M parameters as in the paper's table 6).

Shortcuts are identities; where the shape changes the paper uses option A: subsample by 2 and pad the new
channels with zeros, so residual and plain networks have exactly the same parameters. Option B (1x1
projection + BN) is available. `plain20` ... `plain110` drop the shortcuts: the paper's figure 6 shows the
plain 56-layer net training worse than the plain 20-layer one (the degradation problem) while the residual
56-layer net trains better than ResNet-20. He initialisation (He et al. 2015), BN after every convolution.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .base import he_init
from .registry import MODELS


class PadShortcut(nn.Module):
    """Option A: x[:, :, ::stride, ::stride] with `extra` zero channels split around it (no parameters)."""

    def __init__(self, extra: int, stride: int) -> None:
        super().__init__()
        self.extra, self.stride = extra, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))


class CifarBlock(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int, residual: bool, shortcut: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.residual = residual
        self.shortcut: nn.Module = nn.Identity()
        if residual and (stride != 1 or inplanes != planes):
            self.shortcut = (PadShortcut(planes - inplanes, stride) if shortcut == "A" else
                             nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        if self.residual:
            out = out + self.shortcut(x)
        return F.relu(out)


class CifarResNet(nn.Module):
    def __init__(self, depth: int, num_classes: int, in_channels: int, residual: bool, shortcut: str) -> None:
        super().__init__()
        blocks = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        stages, inplanes = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            layers = []
            for i in range(blocks):
                layers.append(CifarBlock(inplanes, planes, stride if i == 0 else 1, residual, shortcut))
                inplanes = planes
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(64, num_classes)
        he_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _register(depth: int, residual: bool) -> None:
    name = f"{'resnet' if residual else 'plain'}{depth}"

    def builder(*, num_classes: int, in_channels: int, image_size: int,
                shortcut: Literal["A", "B"] = "A") -> nn.Module:
        return CifarResNet(depth, num_classes, in_channels, residual, shortcut)

    builder.__name__ = name
    kind = "residual" if residual else "plain (no shortcuts)"
    description = f"CIFAR {kind} network, {depth} layers (3 stages of {(depth - 2) // 6} blocks)"
    MODELS.register(name, input_size=(3, 32, 32), num_classes=10, paper="He et al. 2016, section 4.2",
                    description=description)(builder)


for _depth in (20, 32, 44, 56, 110):
    _register(_depth, True)
    _register(_depth, False)
