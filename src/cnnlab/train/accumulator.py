"""The running sums of a training epoch, kept on the device: loss, correct count, the non-finite flag and
every step's loss, read with one host sync (once per epoch, or per progress report). Saved into the
checkpoint of an interrupted epoch, so the resumed epoch reports the same numbers as an uninterrupted one."""

from __future__ import annotations

from typing import Any

import torch

from . import distributed


class Accumulator:
    """Running training-loss sum, correct count and non-finite flag, all on the device."""

    def __init__(self, device: torch.device, steps: int) -> None:
        float_type = torch.float32 if device.type == "mps" else torch.float64
        self.loss_sum = torch.zeros((), dtype=float_type, device=device)
        self.correct = torch.zeros((), dtype=torch.int64, device=device)
        self.nonfinite = torch.zeros((), dtype=torch.bool, device=device)
        self.step_losses = torch.full((max(steps, 1),), float("nan"), dtype=torch.float32, device=device)
        self.count = 0
        self.seconds = 0.0

    def add(self, index: int, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        self.loss_sum += loss.to(self.loss_sum.dtype) * labels.shape[0]
        self.correct += (logits.argmax(dim=1) == labels).sum()
        self.nonfinite |= ~torch.isfinite(loss)
        self.step_losses[index] = loss  # every step's loss, read once per epoch (the loss-per-iteration plots)
        self.count += int(labels.shape[0])

    def read(self, all_ranks: bool = False) -> tuple[float, float, bool]:
        """(mean loss, accuracy, diverged): one host sync; `all_ranks`: over every rank of a distributed run."""
        if all_ranks:
            self.merge()
        values = torch.stack([self.loss_sum.double(), self.correct.double(), self.nonfinite.double()]).tolist()
        count = max(self.count, 1)
        return values[0] / count, values[1] / count, bool(values[2])

    def merge(self) -> None:
        """Distributed: every rank's sums and counts into every rank's accumulator (step losses become the
        global batches' means: each rank's is its slice's mean, and the slices are equal)."""
        world = torch.distributed.get_world_size()
        flag = self.nonfinite.to(torch.int32)
        for tensor in (self.loss_sum, self.correct, self.step_losses):
            torch.distributed.all_reduce(tensor)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        self.nonfinite.copy_(flag.bool())
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
        self.correct.copy_(tensors["partial.correct"])
        self.nonfinite.copy_(tensors["partial.nonfinite"])
        self.step_losses.copy_(tensors["partial.step_losses"] * world.size)
        self.count = int(meta["count"])
