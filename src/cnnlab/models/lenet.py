"""LeNet-5: LeCun, Bottou, Bengio, Haffner, "Gradient-based learning applied to document recognition",
Proc. IEEE 86(11), 1998, section II.B and figure 2.

32x32 input -> C1: 6 maps 5x5 (28x28) -> S2: 2x2 subsampling (14x14) -> C3: 16 maps 5x5 (10x10) ->
S4: 2x2 subsampling (5x5) -> C5: 120 maps 5x5 (1x1) -> F6: 84 units -> output. MNIST's 28x28 digits are
zero-padded to 32x32, as in the paper (cnnlab's data.resize=auto does this).

Deviations, all standard in modern re-implementations and each a config option where it matters:
- S2/S4 are plain average (or max) pooling; the paper's units multiply the 2x2 sum by a trainable
  coefficient, add a trainable bias and squash.
- C3 connects every S2 map (the paper's table I connects each C3 map to 3-6 of them).
- The output is a linear layer trained with softmax cross-entropy, not Euclidean RBF units.
- `activation=scaled_tanh` gives the paper's f(a) = 1.7159 tanh(2a/3); the default is plain tanh.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal

from torch import nn

from .base import FeaturesClassifier
from .layers import activation as make_activation
from .layers import pool
from .registry import MODELS, output_shape


@MODELS.register("lenet5", input_size=(1, 32, 32), paper="LeCun et al. 1998",
                 description="LeNet-5: C1 6@5x5, S2, C3 16@5x5, S4, C5 120, F6 84 (tanh/avg or relu/max)")
def lenet5(
    *,
    num_classes: int,
    in_channels: int,
    image_size: int,
    activation: str = "tanh",
    pooling: Literal["avg", "max"] = "avg",
) -> nn.Module:
    def features() -> nn.Sequential:
        return nn.Sequential(OrderedDict([
            ("c1", nn.Conv2d(in_channels, 6, 5)), ("act1", make_activation(activation)), ("s2", pool(pooling, 2)),
            ("c3", nn.Conv2d(6, 16, 5)), ("act3", make_activation(activation)), ("s4", pool(pooling, 2)),
            ("c5", nn.Conv2d(16, 120, 5)), ("act5", make_activation(activation)),
        ]))

    shape = output_shape(features, (in_channels, image_size, image_size), "lenet5 (needs 32x32 or more)")
    classifier = nn.Sequential(OrderedDict([
        ("f6", nn.Linear(shape[1:].numel(), 84)), ("act6", make_activation(activation)),
        ("output", nn.Linear(84, num_classes)),
    ]))
    return FeaturesClassifier(features(), classifier)
