"""LAMB: You, Li, Reddi et al., "Large Batch Optimization for Deep Learning: Training BERT in 76 minutes",
ICLR 2020, algorithm 2 (with phi the identity). Per layer, with weights w, gradient g, step t:
    m = b1 m + (1 - b1) g                 m_hat = m / (1 - b1^t)
    v = b2 v + (1 - b2) g^2               v_hat = v / (1 - b2^t)
    r = m_hat / (sqrt(v_hat) + eps) + lambda * w
    w = w - lr * (||w|| / ||r||) * r
Adam's direction with LARS's layer-wise trust ratio; the ratio is 1 where a norm is zero. Biases and
normalisation parameters (one-dimensional tensors) get neither weight decay nor the ratio by default.
"""

from __future__ import annotations

import torch

from .base import GroupedOptimizer, trust_ratio
from .registry import OPTIMIZERS


class LAMB(GroupedOptimizer):
    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-6,
                 weight_decay: float = 0.01, exclude_bias_norm: bool = True) -> None:
        if lr <= 0 or eps < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"invalid LAMB hyperparameters lr={lr}, betas={betas}, eps={eps}")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                                  "exclude_bias_norm": exclude_bias_norm})

    def _update_group(self, group: dict, params: list[torch.Tensor]) -> None:
        grads = self._gradients(params)
        states, steps = self._adam_moments(params)
        b1, b2 = group["betas"]
        m, v = [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states]
        torch._foreach_lerp_(m, grads, 1 - b1)
        torch._foreach_lerp_(v, torch._foreach_mul(grads, grads), 1 - b2)
        denominator = torch._foreach_sqrt(torch._foreach_div(v, [1 - b2**t for t in steps]))
        torch._foreach_add_(denominator, group["eps"])
        updates = torch._foreach_div(torch._foreach_div(m, [1 - b1**t for t in steps]), denominator)
        adapted = [not (group["exclude_bias_norm"] and p.dim() <= 1) for p in params]
        for update, param, use in zip(updates, params, adapted):
            if use and group["weight_decay"]:
                update.add_(param, alpha=group["weight_decay"])
        ratios = []
        for w_norm, r_norm, use in zip(torch._foreach_norm(params), torch._foreach_norm(updates), adapted):
            ratio = w_norm / r_norm if use else torch.ones_like(w_norm)
            ratios.append(trust_ratio(ratio, w_norm, r_norm))
        torch._foreach_mul_(updates, ratios)
        torch._foreach_add_(params, updates, alpha=-group["lr"])


@OPTIMIZERS.register("lamb", default_lr=1e-3, default_weight_decay=0.01, paper="You et al. 2020",
                     description="layer-wise adaptive moments (Adam + LARS trust ratio), for large batches")
def lamb(params, *, lr: float, weight_decay: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-6,
         exclude_bias_norm: bool = True) -> torch.optim.Optimizer:
    return LAMB(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, exclude_bias_norm=exclude_bias_norm)
