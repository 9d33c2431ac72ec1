"""AggMo: Lucas, Sun, Zemel & Grosse, "Aggregated Momentum: Stability Through Passive Damping",
ICLR 2019, equation 2. K velocity vectors with damping factors b_1..b_K, learning rate g:
    v_t^(i) = b_i v_{t-1}^(i) - grad f(theta_{t-1})        for i = 1..K
    theta_t = theta_{t-1} + (g / K) sum_i v_t^(i)
Large b's move fast along low-curvature directions; small b's damp the oscillations the large ones cause.
With a single b this is heavy-ball momentum (torch's SGD with momentum b). The paper's defaults:
b = (0, 0.9, 0.99). Weight decay is L2, added to the gradient.
"""

from __future__ import annotations

import torch

from .base import GroupedOptimizer
from .registry import OPTIMIZERS


class AggMo(GroupedOptimizer):
    def __init__(self, params, lr: float = 0.1, betas: tuple[float, ...] = (0.0, 0.9, 0.99),
                 weight_decay: float = 0.0) -> None:
        if lr <= 0 or not betas or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"invalid AggMo hyperparameters lr={lr}, betas={betas}")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "weight_decay": weight_decay})

    def _update_group(self, group: dict, params: list[torch.Tensor]) -> None:
        grads: list[torch.Tensor] | tuple[torch.Tensor, ...] = self._gradients(params)
        if group["weight_decay"]:
            grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
        betas = group["betas"]
        for param in params:
            if not self.state[param]:
                self.state[param]["velocity"] = torch.zeros(len(betas), *param.shape, dtype=param.dtype,
                                                            device=param.device)
        velocities = [self.state[p]["velocity"] for p in params]
        scales = torch.tensor(betas, dtype=params[0].dtype, device=params[0].device)
        for velocity, grad in zip(velocities, grads):
            velocity.mul_(scales.view(-1, *[1] * grad.dim())).sub_(grad.unsqueeze(0))
        totals = [v.sum(dim=0) for v in velocities]
        torch._foreach_add_(params, totals, alpha=group["lr"] / len(betas))


@OPTIMIZERS.register("aggmo", default_lr=0.02, paper="Lucas et al. 2019",
                     description="aggregated momentum: several velocities with different damping, averaged")
def aggmo(params, *, lr: float, weight_decay: float,
          betas: tuple[float, ...] = (0.0, 0.9, 0.99)) -> torch.optim.Optimizer:
    return AggMo(params, lr=lr, betas=betas, weight_decay=weight_decay)
