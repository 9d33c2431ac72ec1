"""Learning-rate schedules as pure functions: factor(epoch, epochs=..., **options) -> multiplier of the
base learning rate. Being pure in the training position is what makes a resumed run follow exactly the
schedule of an uninterrupted one (no scheduler state to drift off by one)."""

from __future__ import annotations

import math

from .registry import SCHEDULES


@SCHEDULES.register("constant", description="the base learning rate throughout")
def constant(epoch: float, *, epochs: int) -> float:
    return 1.0


@SCHEDULES.register("step", description="multiply by gamma every step_size epochs (torch StepLR)")
def step(epoch: float, *, epochs: int, step_size: int = 30, gamma: float = 0.1) -> float:
    return gamma ** (int(epoch) // max(step_size, 1))


@SCHEDULES.register("cosine", description="half a cosine down to min_factor x base (Loshchilov & Hutter 2017)")
def cosine(epoch: float, *, epochs: int, min_factor: float = 0.0) -> float:
    progress = min(max(epoch / max(epochs, 1), 0.0), 1.0)
    return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))
