"""The learning-rate range test (L. N. Smith 2017, "Cyclical Learning Rates for Training Neural Networks",
section 3.3): train for a few hundred mini-batches while the learning rate grows exponentially from a tiny
`start` to a large `end`, and read off where the loss falls fastest and where it blows up.

The stop rule and the smoothing follow fastai's `lr_find` (v1 `LRFinder`, v2 `LRFinder` callback):
- the loss of step i is smoothed with an exponential moving average, beta = 0.98, bias-corrected as in
  Adam (Kingma & Ba 2015, section 3): avg_i = beta avg_{i-1} + (1 - beta) loss_i, smoothed_i =
  avg_i / (1 - beta^(i+1)), so the first points are not pulled towards zero;
- the test stops when the smoothed loss exceeds 4 x its minimum so far (it diverges) or is NaN/Inf.
Three readings of the smoothed curve before it diverged (`suggest`), each below the divergence: the lr of the
steepest descent (fastai v1: the most negative slope of loss against log lr, before the minimum), fastai
v2.5's `valley` (the middle of the longest falling run of points) and the minimum's lr / 10 (fastai v2's
`lr_min`). The suggestion is minimum / 10, chosen by measurement (docs/how-to/checks.md, "Which suggestion";
tools/lr_find_rules.py): on four model/data/optimizer pairs, three seeds each, trained at each reading and
judged with cnnlab's verdicts, valley was worse than minimum / 10 on all four; steepest was better on the three
SGD and momentum pairs (+3.9 to +6.9 points) but trained at chance with Adam, and one seed's curve put it at
the range's first rate (1e-07). A default must not fail, so minimum / 10 it is; the other two are printed.
A test that diverges before the loss falls gives no suggestion, and says so.

The model and optimizer are restored after the test (`range_test`): the run they belong to is untouched.
Deviation from Smith: he ramps linearly over a few epochs; the exponential ramp over ~100 batches is
fastai's, which covers eight decades in seconds.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data import Batches
from ..errors import ConfigError
from .runtime import Runtime

BETA = 0.98  # fastai's smoothing of the loss
DIVERGED = 4.0  # stop when the smoothed loss exceeds this many times its minimum so far (fastai)


def exponential_rates(start: float, end: float, steps: int) -> np.ndarray:
    """`steps` learning rates from `start` to `end`, equally spaced on a log scale (both ends included)."""
    if not (0 < start < end and math.isfinite(end)):
        raise ConfigError(f"the range test needs 0 < --start < --end, got start={start:g}, end={end:g}")
    if steps < 2:
        raise ConfigError(f"the range test needs --steps of at least 2, got {steps}")
    return start * (end / start) ** (np.arange(steps) / (steps - 1))


def smooth(losses: list[float] | np.ndarray, beta: float = BETA) -> np.ndarray:
    """The bias-corrected exponential moving average of `losses` (NaN stays NaN from where it appears)."""
    smoothed, average = np.empty(len(losses)), 0.0
    for index, loss in enumerate(losses):
        average = beta * average + (1 - beta) * float(loss)
        smoothed[index] = average / (1 - beta ** (index + 1))
    return smoothed


def stop_index(smoothed: np.ndarray, factor: float = DIVERGED) -> int | None:
    """The first index where the smoothed loss is NaN/Inf or above `factor` x its minimum so far, else None."""
    best = math.inf
    for index, value in enumerate(smoothed):
        if not math.isfinite(value):
            return index
        if index > 0 and value > factor * best:
            return index
        best = min(best, value)
    return None


RULES = {  # how each rule reads the smoothed curve before it diverged (train/lr_find.py's docstring)
    "valley": "the middle of the longest valley of the smoothed loss (fastai's valley)",
    "steepest": "the steepest descent of the smoothed loss (fastai v1)",
    "minimum/10": "the lr of the smoothed loss's minimum / 10 (fastai's lr_min)",
}
DEFAULT_RULE = "minimum/10"  # measured: docs/how-to/checks.md, "Which suggestion" (tools/lr_find_rules.py)
# what the measurement says a person may try instead, printed under the alternatives
MEASURED = ("minimum/10 is the cautious reading: with plain or momentum SGD the steepest point trained 3.9 to 6.9 "
            "points better on the 3 pairs measured, with Adam it trained at chance (docs/how-to/checks.md)")


@dataclass(frozen=True)
class Suggestion:
    """What the range test suggests, from the smoothed curve before it diverged: every rule's rate
    (`candidates`), the default rule's as `lr`, or no suggestion (`lr` None) and `why`."""

    lr: float | None  # the suggestion: the rate of `rule`; None when the curve gives none (see `why`)
    candidates: dict[str, float]  # rule -> its rate, each below the divergence point
    minimum_lr: float  # where the smoothed loss is lowest
    minimum_loss: float
    falls: bool  # whether the loss fell at all (else the suggestion means little)
    rule: str = DEFAULT_RULE
    diverged_lr: float | None = None  # the rate at which the test stopped on divergence (no suggestion reaches it)
    why: str | None = None  # why there is no suggestion

    @property
    def how(self) -> str:
        return RULES[self.rule]

    @property
    def steepest_lr(self) -> float | None:
        return self.candidates.get("steepest")

    @property
    def alternatives(self) -> dict[str, float]:
        """The other rules' rates, for a person to weigh (printed beside the suggestion)."""
        return {rule: lr for rule, lr in self.candidates.items() if rule != self.rule}

    def to_dict(self) -> dict[str, Any]:
        return {"lr": self.lr, "rule": self.rule, "how": self.how, "candidates": dict(self.candidates),
                "steepest_lr": self.steepest_lr, "minimum_lr": self.minimum_lr, "minimum_loss": self.minimum_loss,
                "falls": self.falls, "diverged_lr": self.diverged_lr, "why": self.why}


def valley_index(smoothed: np.ndarray) -> int:
    """fastai's `valley` (v2.5): the longest strictly falling run of points (a longest decreasing subsequence,
    O(n^2) over ~100 points), and the point 1/3 + 1/6 of the way along it (its middle, leaning early)."""
    count = len(smoothed)
    lengths = [1] * count
    start = end = 0
    for i in range(1, count):
        for j in range(i):
            if smoothed[i] < smoothed[j] and lengths[i] < lengths[j] + 1:
                lengths[i] = lengths[j] + 1
            if lengths[end] < lengths[i]:
                end = i
                start = end - lengths[end]
    sections = (end - start) / 3
    return start + int(sections) + int(sections / 2)


def _three_digits(lr: float) -> float:
    return float(f"{lr:.3g}")  # the number a person writes in a config


def suggest(rates: np.ndarray, smoothed: np.ndarray, diverged_lr: float | None = None,
            rule: str = DEFAULT_RULE) -> Suggestion:
    """The suggestion from the points before the stop (`rates` and `smoothed` cut there already);
    `diverged_lr`: the rate at which the loss diverged (None: the test reached --end). Every rule reads the
    curve before the divergence, so no rate it gives reaches it; a test that diverged before the loss fell
    gives no suggestion."""
    if rule not in RULES:
        raise ConfigError(f"the lr-find rule must be one of {', '.join(RULES)}, not '{rule}'")
    finite = np.isfinite(smoothed)
    if finite.sum() < 2:
        first = float(rates[0]) if len(rates) else diverged_lr
        return Suggestion(None, {}, math.nan, math.nan, False, rule, diverged_lr if diverged_lr is not None else first,
                          why=f"the range test diverged at once (the loss was NaN/Inf from its first steps, at lr "
                              f"{first:.3g}): lower --start, or check the data and model with `cnnlab check --overfit`")
    rates, smoothed = rates[finite], smoothed[finite]
    lowest = int(np.argmin(smoothed))
    # the steepest descent before the minimum: np.gradient of loss against log10(lr), as fastai v1
    falling = slice(0, max(lowest + 1, 2))
    slopes = np.gradient(smoothed[falling], np.log10(rates[falling]))
    steepest = int(np.argmin(slopes))
    falls = bool(smoothed[lowest] < 0.95 * smoothed[0])  # 5%: more than the smoothing's wobble on a flat curve
    # fastai reads the valley without the first tenth of the steps (the smoothing's start) and the last five
    # (the rise into the divergence); a short curve is read whole
    skip = len(smoothed) // 10 if len(smoothed) >= 20 else 0
    tail = 5 if len(smoothed) - skip >= 15 else 0
    valley = skip + valley_index(smoothed[skip:len(smoothed) - tail])
    candidates = {"valley": float(rates[valley]), "steepest": float(rates[falling][steepest]),
                  "minimum/10": float(rates[lowest] / 10)}
    candidates = {name: _three_digits(lr) for name, lr in candidates.items()
                  if diverged_lr is None or lr < diverged_lr}  # never at or past the divergence
    found = Suggestion(None, candidates, float(rates[lowest]), float(smoothed[lowest]), falls, rule, diverged_lr)
    if diverged_lr is not None and not falls:
        return dataclasses.replace(found, why=(
            f"the loss diverged at lr {diverged_lr:.3g} before it fell: every rate of the range test from "
            f"{rates[0]:.3g} up was too high to learn at, or the model cannot learn (lower --start, e.g. "
            f"{rates[0] / 1000:.3g}, and check the run with `cnnlab check --overfit`)"))
    return dataclasses.replace(found, lr=candidates.get(rule))


@dataclass
class RangeTest:
    """The points of one range test: the rate and raw loss of every step taken, and why it stopped."""

    rates: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    stopped: str = "reached --end"

    @property
    def smoothed(self) -> np.ndarray:
        return smooth(self.losses)

    def suggestion(self, rule: str = DEFAULT_RULE) -> Suggestion:
        smoothed = self.smoothed
        end = stop_index(smoothed)
        diverged = None if end is None else self.rates[end]
        end = len(smoothed) if end is None else end
        return suggest(np.asarray(self.rates[:end]), smoothed[:end], diverged, rule)


def range_test(model: nn.Module, optimizer: torch.optim.Optimizer, batches: Batches, runtime: Runtime,
               rates: np.ndarray) -> RangeTest:
    """Train `model` one batch per rate of `rates`, stopping when the smoothed loss diverges; the model's
    weights and buffers, the optimizer's state and lr, and the random generators are restored afterwards."""
    saved_model = copy.deepcopy(model.state_dict())
    saved_optimizer = copy.deepcopy(optimizer.state_dict())
    devices = [runtime.device] if runtime.device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            return _ramp(model, optimizer, batches, runtime, rates)
    finally:
        model.load_state_dict(saved_model)
        optimizer.load_state_dict(saved_optimizer)


def _ramp(model: nn.Module, optimizer: torch.optim.Optimizer, batches: Batches, runtime: Runtime,
          rates: np.ndarray) -> RangeTest:
    factors = [group["lr"] for group in optimizer.param_groups]  # backbone_lr_factor and the like, kept
    base = factors[0] or 1.0
    result = RangeTest()
    model.train()
    for (images, labels), rate in zip(_endless(batches), rates):
        for group, lr in zip(optimizer.param_groups, factors):
            group["lr"] = float(rate) * lr / base
        with runtime.autocast():
            loss = F.cross_entropy(model(images).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        result.rates.append(float(rate))
        result.losses.append(float(loss.detach()))  # one host sync per step: the stop rule needs it (a diagnostic)
        if stop_index(smooth(result.losses)) is not None:  # the pure rule, on the curve so far (~100 points)
            smoothed = result.smoothed[-1]
            result.stopped = (f"the loss became NaN/Inf at lr {rate:.3g}" if not math.isfinite(smoothed) else
                              f"the smoothed loss passed {DIVERGED:g} x its minimum at lr {rate:.3g}")
            break
    return result


def _endless(batches: Batches) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Training batches epoch after epoch (a small training set has fewer batches than the test's steps)."""
    epoch = 0
    while True:
        empty = True
        for batch in batches.batches(epoch):
            empty = False
            yield batch
        if empty:
            raise ConfigError("the training split gives no full batch: lower train.batch_size")
        epoch += 1
