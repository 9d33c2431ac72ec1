"""The shape shared by the plain (non-residual) networks: `features` (convolutions), an optional `avgpool`,
then `classifier`, the names torchvision's AlexNet and VGG use.

Naming the parts the same way in every architecture is what lets transfer learning freeze "the conv
layers" or "the FC layers", the viz commands find `conv1`, and torchvision state dicts load by name.
"""

from __future__ import annotations

import torch
from torch import nn

SMALL_INPUT_BELOW = 64  # stem="auto" picks the small-input stem for images smaller than this


def small_stem(stem: str, image_size: int) -> bool:
    """Whether an ImageNet architecture should use its small-input stem (CIFAR/MNIST-sized images)."""
    return stem == "small" or (stem == "auto" and image_size < SMALL_INPUT_BELOW)


class FeaturesClassifier(nn.Module):
    def __init__(self, features: nn.Sequential, classifier: nn.Sequential, avgpool: nn.Module | None = None) -> None:
        super().__init__()
        self.features = features
        if avgpool is not None:
            self.avgpool = avgpool
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        if hasattr(self, "avgpool"):
            x = self.avgpool(x)
        return self.classifier(torch.flatten(x, 1))


def he_init(model: nn.Module, linear_std: float | None = None) -> None:
    """He normal (fan_out) for convolutions (He et al. 2015), BN as identity, and, with `linear_std`,
    N(0, linear_std) for linear layers (else PyTorch's default stays): one pass in module order."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear) and linear_std is not None:
            nn.init.normal_(module.weight, 0, linear_std)
            nn.init.zeros_(module.bias)


def init_like_torchvision(model: nn.Module) -> None:
    """The initialisation torchvision's VGG uses: he_init with N(0, 0.01) linear layers (Simonyan &
    Zisserman initialised from a shallower net instead)."""
    he_init(model, linear_std=0.01)
