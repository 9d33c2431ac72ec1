"""The eager training step: forward, loss and backward over one or more micro-batches, then one update.

Gradient accumulation (`train.grad_accum_steps` = k): each micro-batch's mean loss is divided by k before
its backward, so the summed gradients are those of the mean loss over the k x batch_size images, the same
as one big batch for a model without batch norm (batch norm normalises each micro-batch by its own
statistics, so there it is close, not equal). In a distributed run the all-reduce waits for the last
micro-batch (DDP's no_sync on the others). The loss is cross-entropy with the run's label smoothing, on hard
labels or on the soft targets of mixup/CutMix (data/mixing.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError

Batch = tuple[torch.Tensor, torch.Tensor]  # (images, targets): int64 labels [B] or soft targets [B, C]


def training_loss(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy in float32, with torch's own label smoothing (hard or soft targets alike)."""
    return F.cross_entropy(logits.float(), targets, label_smoothing=label_smoothing)


def groups(batches: Iterable[Batch], size: int, count: int) -> Iterator[list[Batch]]:
    """At most `count` consecutive groups of `size` micro-batches; a trailing incomplete group is dropped."""
    iterator = iter(batches)
    for _ in range(count):
        group = list(islice(iterator, size))
        if len(group) < size:
            return
        yield group


def steps_per_epoch(batches: int, accumulation: int) -> int:
    """Optimizer steps per epoch: whole groups of `accumulation` batches; none is a ConfigError."""
    if batches // accumulation < 1:
        raise ConfigError(f"train.grad_accum_steps={accumulation} needs at least {accumulation} training batches per "
                          f"epoch, and the training set makes {batches}: lower train.grad_accum_steps or "
                          "train.batch_size (the micro-batch)")
    return batches // accumulation


class EagerStep:
    """Callable: a group of (images, targets) micro-batches -> (mean loss, logits of all), detached."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, autocast: Callable,
                 label_smoothing: float = 0.0) -> None:
        self.model, self.optimizer, self.autocast = model, optimizer, autocast
        self.label_smoothing = label_smoothing

    def __call__(self, micro: Sequence[Batch]) -> tuple[torch.Tensor, torch.Tensor]:
        self.optimizer.zero_grad(set_to_none=True)
        losses, outputs = [], []
        for index, (images, targets) in enumerate(micro):
            with self._sync(last=index == len(micro) - 1):
                with self.autocast():
                    logits = self.model(images)
                    loss = training_loss(logits, targets, self.label_smoothing)
                (loss / len(micro) if len(micro) > 1 else loss).backward()
            losses.append(loss.detach())
            outputs.append(logits.detach())
        self.optimizer.step()
        if len(micro) == 1:
            return losses[0], outputs[0]
        return torch.stack(losses).mean(), torch.cat(outputs)

    def _sync(self, last: bool) -> contextlib.AbstractContextManager:
        """DDP all-reduces the gradients in the backward of the last micro-batch only."""
        if last or not isinstance(self.model, nn.parallel.DistributedDataParallel):
            return contextlib.nullcontext()
        return self.model.no_sync()
