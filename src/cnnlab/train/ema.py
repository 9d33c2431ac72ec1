"""An exponential moving average of the weights (`train.ema_decay`), with torch.optim.swa_utils.

ema_1 = w_1; ema_t = decay x ema_{t-1} + (1 - decay) x w_t after every later optimizer step t (`AveragedModel`
with `get_ema_multi_avg_fn`, one foreach lerp), batch-norm buffers averaged alike (`use_buffers=True`), as
torchvision's reference scripts keep one. The average starts from the weights after the first step (w_1:
AveragedModel copies them at its first update), not from the initial weights w_0 as timm's ModelEmaV3 does
(it copies the model when created, so its first update gives decay x w_0 + (1 - decay) x w_1); the two differ
by decay^t x (w_1 - w_0) after t steps, which fades within the EMA's horizon. Polyak & Juditsky (1992)
average the iterates; the exponential form weights the recent ones (decay 0.999: a horizon of about 1,000 steps).

`AveragedModel` keeps its step counter `n_averaged` where `device` says, here the CPU (device=None): its
per-step `if n_averaged == 0` then reads host memory instead of waiting on the GPU. The averaged weights
live beside the model's (a deep copy on the same device) and go into every checkpoint under `ema.`, the
counter as `ema_count`, so a resumed run continues the same average bit for bit.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from .checkpoint import split_prefix

PREFIX = "ema."
COUNT = "ema_count"


class WeightAverage:
    """The EMA of a model's weights and buffers; `module` is the averaged network (eval it like the model)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
        self.averaged.requires_grad_(False)

    @property
    def module(self) -> nn.Module:
        return self.averaged.module

    def update(self, model: nn.Module) -> None:
        self.averaged.update_parameters(model)

    def tensors(self) -> dict[str, torch.Tensor]:
        """The averaged state dict under `ema.`, and the number of averaged steps."""
        tensors = {f"{PREFIX}{k}": v for k, v in self.module.state_dict().items()}
        tensors[COUNT] = self.averaged.n_averaged
        return tensors

    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(split_prefix(tensors, PREFIX))
        if COUNT in tensors:
            self.averaged.n_averaged.copy_(tensors[COUNT])
