"""LARS: You, Gitman & Ginsburg, "Large Batch Training of Convolutional Networks" (arXiv 1708.03888,
2017), algorithm 1. For every layer l, with weights w, gradient g, weight decay b, trust coefficient eta,
global learning rate lr_t and momentum m:
    local_lr = eta * ||w|| / (||g|| + b * ||w||)
    v = m * v + lr_t * local_lr * (g + b * w)
    w = w - v
The local rate keeps each layer's step proportional to its weights, which is what let AlexNet-BN and
ResNet-50 train at batch sizes up to 32k. Biases and batch-norm parameters (tensors of one dimension) are
excluded by default, as in the paper's implementations: for them local_lr = 1 and no weight decay, i.e.
plain momentum SGD. A layer with a zero weight or gradient norm also gets local_lr = 1. `trust=False`
turns the local rate off everywhere (momentum SGD with the learning rate inside the velocity).
"""

from __future__ import annotations

import torch

from .base import GroupedOptimizer, trust_ratio
from .registry import OPTIMIZERS


class LARS(GroupedOptimizer):
    def __init__(self, params, lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 5e-4,
                 eta: float = 0.001, exclude_bias_norm: bool = True, trust: bool = True) -> None:
        if lr <= 0 or not 0 <= momentum < 1 or eta <= 0:
            raise ValueError(f"invalid LARS hyperparameters lr={lr}, momentum={momentum}, eta={eta}")
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "eta": eta,
                                  "exclude_bias_norm": exclude_bias_norm, "trust": trust})

    def _update_group(self, group: dict, params: list[torch.Tensor]) -> None:
        excluded = [group["exclude_bias_norm"] and p.dim() <= 1 for p in params]
        adapted = [group["trust"] and not out for out in excluded]
        decay = [0.0 if out else group["weight_decay"] for out in excluded]
        raw = self._gradients(params)
        grads = [g.add(p, alpha=d) if d else g for p, g, d in zip(params, raw, decay)]
        rates = self._local_rates(params, raw, adapted, decay, group["eta"])
        velocities = []
        for param in params:
            if "momentum_buffer" not in self.state[param]:
                self.state[param]["momentum_buffer"] = torch.zeros_like(param)
            velocities.append(self.state[param]["momentum_buffer"])
        scaled = torch._foreach_mul(grads, rates)
        torch._foreach_mul_(scaled, group["lr"])
        torch._foreach_mul_(velocities, group["momentum"])
        torch._foreach_add_(velocities, scaled)
        torch._foreach_sub_(params, velocities)

    @staticmethod
    def _local_rates(params, grads, adapted, decay, eta) -> list[torch.Tensor]:
        """eta * ||w|| / (||g|| + b ||w||) per tensor, 1 where not adapted or a norm is zero: device tensors."""
        weight_norms = torch._foreach_norm(params)
        grad_norms = torch._foreach_norm(grads)
        rates = []
        for w_norm, g_norm, use, b in zip(weight_norms, grad_norms, adapted, decay):
            if not use:
                rates.append(torch.ones_like(w_norm))
                continue
            ratio = eta * w_norm / (g_norm + b * w_norm)
            rates.append(trust_ratio(ratio, w_norm, g_norm))
        return rates


@OPTIMIZERS.register("lars", default_lr=0.1, paper="You, Gitman & Ginsburg 2017",
                     description="layer-wise adaptive rate scaling for large batches (momentum + trust ratio)")
def lars(params, *, lr: float, weight_decay: float, momentum: float = 0.9, eta: float = 0.001,
         exclude_bias_norm: bool = True, trust: bool = True) -> torch.optim.Optimizer:
    return LARS(params, lr=lr, momentum=momentum, weight_decay=weight_decay, eta=eta,
                exclude_bias_norm=exclude_bias_norm, trust=trust)
