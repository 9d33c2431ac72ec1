"""Classification metrics computed on the device with one host sync per evaluation.

top-k accuracy: the true label is among the k highest logits (Krizhevsky et al. 2012 report top-1 and
top-5 error = 1 - accuracy). The confusion matrix counts (true, predicted) pairs with one bincount per
batch; per-class accuracy (recall) is its diagonal over its row sums.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


@torch.inference_mode()
def evaluate_model(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    num_classes: int,
    autocast: Any = None,
    confusion: bool = False,
) -> dict[str, Any]:
    """loss (mean cross-entropy), acc (top-1), top5, count, and optionally the confusion matrix."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    loss_sum = torch.zeros((), dtype=torch.float64 if device.type != "mps" else torch.float32, device=device)
    top1 = torch.zeros((), dtype=torch.int64, device=device)
    top5 = torch.zeros((), dtype=torch.int64, device=device)
    matrix = torch.zeros(num_classes * num_classes, dtype=torch.int64, device=device) if confusion else None
    count = 0
    k = min(5, num_classes)
    for images, labels in batches:
        if autocast is not None:
            with autocast():
                logits = model(images)
        else:
            logits = model(images)
        logits = logits.float()
        loss_sum += F.cross_entropy(logits, labels, reduction="sum").to(loss_sum.dtype)
        top = logits.topk(k, dim=1).indices
        top1 += (top[:, 0] == labels).sum()
        top5 += (top == labels[:, None]).any(dim=1).sum()
        if matrix is not None:
            matrix += torch.bincount(labels * num_classes + top[:, 0], minlength=num_classes * num_classes)
        count += int(labels.shape[0])
    model.train(was_training)
    result: dict[str, Any] = {
        "loss": float(loss_sum) / max(count, 1),
        "acc": int(top1) / max(count, 1),
        "top5": int(top5) / max(count, 1),
        "count": count,
    }
    if matrix is not None:
        result["confusion"] = matrix.view(num_classes, num_classes).cpu()
    return result


def per_class_accuracy(confusion: torch.Tensor) -> list[float | None]:
    """Recall of each class (None for a class with no samples)."""
    totals = confusion.sum(dim=1)
    return [None if int(t) == 0 else float(confusion[i, i]) / float(t) for i, t in enumerate(totals)]
