"""Learning-rate schedules as pure functions: factor(epoch, epochs=..., **options) -> multiplier of the
base learning rate, `epoch` fractional when stepped per iteration. Being pure in the training position
(and, for reduce-on-plateau, in the metric history) is what makes a resumed run follow exactly the
schedule of an uninterrupted one: no scheduler state to drift off by one.

A linear warm-up (Goyal et al. 2017) can precede any of them: see `lr_factor` in optim/__init__.py.
Each matches its torch.optim.lr_scheduler counterpart at every epoch (tested).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from .registry import SCHEDULES


@SCHEDULES.register("constant", description="the base learning rate throughout")
def constant(epoch: float, *, epochs: int) -> float:
    return 1.0


@SCHEDULES.register("step", description="multiply by gamma every step_size epochs (torch StepLR)")
def step(epoch: float, *, epochs: int, step_size: int = 30, gamma: float = 0.1) -> float:
    return gamma ** (int(epoch) // max(step_size, 1))


@SCHEDULES.register("multistep", description="multiply by gamma at each milestone epoch (torch MultiStepLR); "
                    "a milestone below 1 is a fraction of the epochs")
def multistep(epoch: float, *, epochs: int, milestones: tuple[float, ...] = (30, 60, 90), gamma: float = 0.1) -> float:
    # fractions let one study file say "at 50% and 75%" (He et al. 2016's 32k/48k of 64k iterations) whatever
    # the epoch count a user chooses
    at = [round(m * epochs) if 0 < m < 1 else m for m in milestones]
    return gamma ** sum(int(epoch) >= m for m in at)


@SCHEDULES.register("exponential", description="multiply by gamma every epoch (torch ExponentialLR)")
def exponential(epoch: float, *, epochs: int, gamma: float = 0.95) -> float:
    return gamma**epoch


@SCHEDULES.register("cosine", description="half a cosine down to min_factor x base (Loshchilov & Hutter 2017)")
def cosine(epoch: float, *, epochs: int, min_factor: float = 0.0) -> float:
    progress = min(max(epoch / max(epochs, 1), 0.0), 1.0)
    return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))


@SCHEDULES.register("polynomial", description="(1 - epoch/epochs)^power, LARS's 'poly' decay (torch PolynomialLR)")
def polynomial(epoch: float, *, epochs: int, power: float = 2.0, min_factor: float = 0.0) -> float:
    progress = min(max(epoch / max(epochs, 1), 0.0), 1.0)
    return min_factor + (1.0 - min_factor) * (1.0 - progress) ** power


@SCHEDULES.register("onecycle", description="up then down in one cycle (Smith & Topin 2019, torch OneCycleLR)")
def onecycle(epoch: float, *, epochs: int, pct_start: float = 0.3, div_factor: float = 25.0,
             final_div_factor: float = 1e4) -> float:
    """Cosine from base/div_factor up to base over pct_start of training, then cosine down to
    base/(div_factor * final_div_factor) at the end (Smith & Topin 2019). The base learning rate is the peak.
    Positions 0..epochs are counted as torch.optim.lr_scheduler.OneCycleLR counts its total_steps = epochs + 1
    steps: the rise ends at pct_start * (epochs + 1) - 1, so the two give the same rates."""
    position = min(max(epoch, 0.0), float(epochs))
    start, end = 1.0 / div_factor, 1.0 / (div_factor * final_div_factor)
    peak = max(pct_start * (epochs + 1) - 1.0, 1e-12)
    if position <= peak:
        return _cosine_between(start, 1.0, position / peak)
    return _cosine_between(1.0, end, (position - peak) / max(epochs - peak, 1e-12))


def _cosine_between(high_start: float, end: float, fraction: float) -> float:
    return end + (high_start - end) * 0.5 * (1.0 + math.cos(math.pi * fraction))


@SCHEDULES.register("plateau", needs_history=True,
                    description="multiply by factor when the metric stops improving (torch ReduceLROnPlateau)")
def plateau(epoch: float, *, epochs: int, history: Sequence[dict] = (), factor: float = 0.1, patience: int = 10,
            threshold: float = 1e-4, monitor: str = "val_loss", mode: Literal["min", "max"] = "min",
            min_factor: float = 0.0) -> float:
    """Replays the epochs completed before `epoch` (relative threshold, no cooldown, as torch's defaults)."""
    value, best, bad = 1.0, None, 0
    for row in history[: int(epoch)]:
        metric = row.get(monitor)
        if metric is None:
            continue
        better = best is None or (metric < best * (1 - threshold) if mode == "min" else metric > best * (1 + threshold))
        if better:
            best, bad = metric, 0
        else:
            bad += 1
            if bad > patience:
                value, bad = max(value * factor, min_factor), 0
    return value
