"""The running sums of a training epoch, kept on the device: loss, correct count and every step's loss,
read with one host sync (once per epoch, or per progress report). Saved into the checkpoint of an
interrupted epoch, so the resumed epoch reports the same numbers as an uninterrupted one.

The non-finite flag is the loss sum itself: a NaN or Inf step loss makes the sum NaN or Inf and keeps it
so (NaN + x = NaN, Inf + finite = Inf, Inf - Inf = NaN), while finite float32 losses times a batch size
cannot overflow a float64 sum. So a step adds two fused updates (the loss, the correct count) and the step
loss, not a separate isfinite / not / or per step (issue 25: the Trainer's per-step cost against a
hand-written loop). On MPS, without float64, a float32 sum overflowing (a mean loss above ~1e30 over an
epoch) reads as non-finite too: the run has diverged either way.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from . import distributed


class Accumulator:
    """Running training-loss sum, correct count and non-finite flag, all on the device."""

    def __init__(self, device: torch.device, steps: int) -> None:
        float_type = torch.float32 if device.type == "mps" else torch.float64
        self.loss_sum = torch.zeros((), dtype=float_type, device=device)
        self.correct = torch.zeros((), dtype=torch.int64, device=device)
        self.step_losses = torch.full((max(steps, 1),), float("nan"), dtype=torch.float32, device=device)
        self.count = 0
        self.seconds = 0.0

    def add(self, index: int, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        self.loss_sum.add_(loss, alpha=labels.shape[0])  # one op: promoted to the sum's float64, times B
        self.correct.add_((logits.argmax(dim=1) == labels).sum())
        self.step_losses[index] = loss  # every step's loss, read once per epoch (the loss-per-iteration plots)
        self.count += int(labels.shape[0])

    def read(self, all_ranks: bool = False) -> tuple[float, float, bool]:
        """(mean loss, accuracy, diverged): one host sync; `all_ranks`: over every rank of a distributed run."""
        if all_ranks:
            self.merge()
        values = torch.stack([self.loss_sum.double(), self.correct.double()]).tolist()
        count = max(self.count, 1)
        return values[0] / count, values[1] / count, not math.isfinite(values[0])

    @property
    def nonfinite(self) -> torch.Tensor:
        """Whether any step's loss was NaN/Inf (a bool on the device; see the module's notes)."""
        return ~torch.isfinite(self.loss_sum)

    def merge(self) -> None:
        """Distributed: every rank's sums and counts into every rank's accumulator (step losses become the
        global batches' means: each rank's is its slice's mean, and the slices are equal)."""
        world = torch.distributed.get_world_size()
        for tensor in (self.loss_sum, self.correct, self.step_losses):  # a NaN/Inf sum stays one when summed
            torch.distributed.all_reduce(tensor)
        self.step_losses /= world
        self.count = int(distributed.all_sum([float(self.count)], self.correct.device)[0])

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"partial.loss_sum": self.loss_sum, "partial.correct": self.correct,
                "partial.nonfinite": self.nonfinite, "partial.step_losses": self.step_losses}

    def load(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any],
             world: distributed.World = distributed.SINGLE) -> None:
        """The sums of an interrupted epoch (saved merged over all ranks). Resumed on W ranks, rank 0 holds
        them (its step losses x W, as the merge divides by W) and the others start from zero."""
        self.seconds = float(meta["seconds"])
        if not world.main:
            self.step_losses.zero_()
            return
        self.loss_sum.copy_(tensors["partial.loss_sum"])
        if bool(tensors["partial.nonfinite"]):  # the flag saved with the sums (a NaN/Inf sum says it too)
            self.loss_sum.fill_(math.nan)
        self.correct.copy_(tensors["partial.correct"])
        self.step_losses.copy_(tensors["partial.step_losses"] * world.size)
        self.count = int(meta["count"])
