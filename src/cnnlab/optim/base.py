"""What our home-made optimizers share: the step loop over parameter groups (closure, only parameters with
a gradient), Adam's lazily created moments with their step counter, and the layer-wise trust ratio that
falls back to 1 where a norm is zero. Each optimizer file keeps only its own update equations."""

from __future__ import annotations

from typing import Any

import torch


class GroupedOptimizer(torch.optim.Optimizer):
    """`step()` calls `_update_group(group, params)` for every group with at least one gradient."""

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                self._update_group(group, params)
        return loss

    def _update_group(self, group: dict[str, Any], params: list[torch.Tensor]) -> None:
        raise NotImplementedError

    @staticmethod
    def _gradients(params: list[torch.Tensor]) -> list[torch.Tensor]:
        """The gradients of `params` (step() passes only parameters that have one), in their order."""
        return [p.grad for p in params if p.grad is not None]

    def _adam_moments(self, params: list[torch.Tensor]) -> tuple[list[dict], list[int]]:
        """Each parameter's state with `exp_avg`, `exp_avg_sq` and `step` (created at zero), each step
        counter advanced by one; returns the states and the new step numbers. The count is per parameter,
        as in torch.optim.Adam: a parameter without a gradient on some steps (a frozen or unused branch)
        keeps its own bias correction, and the result does not depend on the order of the parameters."""
        states, steps = [], []
        for param in params:
            state = self.state[param]
            if not state:
                state["step"] = torch.zeros((), dtype=torch.float32)  # on the CPU: reading it syncs no device
                state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            state["step"] += 1
            states.append(state)
            steps.append(int(state["step"].item()))
        return states, steps


def trust_ratio(ratio: torch.Tensor, weight_norm: torch.Tensor, other_norm: torch.Tensor) -> torch.Tensor:
    """`ratio` where both norms are positive, else 1 (a zero layer or gradient keeps the global rate)."""
    return torch.where((weight_norm > 0) & (other_norm > 0), ratio, torch.ones_like(ratio))
