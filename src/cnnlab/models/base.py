"""The shape shared by the plain (non-residual) networks: `features` (convolutions) then `classifier`.

Naming the two halves the same way in every architecture (as torchvision's AlexNet and VGG do) is what
lets transfer learning freeze "the conv layers" or "the FC layers" and the viz commands find `conv1`.
"""

from __future__ import annotations

import torch
from torch import nn


class FeaturesClassifier(nn.Module):
    def __init__(self, features: nn.Sequential, classifier: nn.Sequential) -> None:
        super().__init__()
        self.features = features
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))
