"""QHAdam: Ma & Yarats, "Quasi-hyperbolic momentum and Adam for deep learning", ICLR 2019, algorithm 2.

With gradient g_t, step t, learning rate a:
    m_t = b1 m_{t-1} + (1 - b1) g_t          m_hat = m_t / (1 - b1^t)
    s_t = b2 s_{t-1} + (1 - b2) g_t^2        s_hat = s_t / (1 - b2^t)
    theta_t = theta_{t-1} - a [(1 - v1) g_t + v1 m_hat] / (sqrt((1 - v2) g_t^2 + v2 s_hat) + eps)
The "quasi-hyperbolic" terms mix the plain gradient into the momentum (v1) and the second moment (v2);
with v1 = v2 = 1 this is Adam exactly. The paper's recommended defaults: b = (0.995, 0.999), v = (0.7, 1.0).
Weight decay is L2, added to the gradient (as torch.optim.Adam).
"""

from __future__ import annotations

import torch

from .base import GroupedOptimizer
from .registry import OPTIMIZERS


class QHAdam(GroupedOptimizer):
    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.995, 0.999),
                 nus: tuple[float, float] = (0.7, 1.0), eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        if lr <= 0 or eps < 0 or not all(0 <= b < 1 for b in betas) or not all(0 <= v <= 1 for v in nus):
            raise ValueError(f"invalid QHAdam hyperparameters lr={lr}, betas={betas}, nus={nus}, eps={eps}")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "nus": tuple(nus), "eps": eps,
                                  "weight_decay": weight_decay})

    def _update_group(self, group: dict, params: list[torch.Tensor]) -> None:
        grads: list[torch.Tensor] | tuple[torch.Tensor, ...] = self._gradients(params)
        if group["weight_decay"]:
            grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
        states, steps = self._adam_moments(params)
        (b1, b2), (v1, v2) = group["betas"], group["nus"]
        m, s = [st["exp_avg"] for st in states], [st["exp_avg_sq"] for st in states]
        torch._foreach_lerp_(m, grads, 1 - b1)
        squares = torch._foreach_mul(grads, grads)
        torch._foreach_lerp_(s, squares, 1 - b2)
        numerator = torch._foreach_mul(m, [v1 / (1 - b1**t) for t in steps])
        torch._foreach_add_(numerator, grads, alpha=1 - v1)
        denominator = torch._foreach_mul(s, [v2 / (1 - b2**t) for t in steps])
        torch._foreach_add_(denominator, squares, alpha=1 - v2)
        denominator = torch._foreach_sqrt(denominator)
        torch._foreach_add_(denominator, group["eps"])
        torch._foreach_addcdiv_(params, numerator, denominator, value=-group["lr"])


@OPTIMIZERS.register("qhadam", default_lr=1e-3, default_weight_decay=0.0, paper="Ma & Yarats 2019",
                     description="quasi-hyperbolic Adam: mixes the raw gradient into Adam's moments")
def qhadam(params, *, lr: float, weight_decay: float, betas: tuple[float, float] = (0.995, 0.999),
           nus: tuple[float, float] = (0.7, 1.0), eps: float = 1e-8) -> torch.optim.Optimizer:
    return QHAdam(params, lr=lr, betas=betas, nus=nus, eps=eps, weight_decay=weight_decay)
