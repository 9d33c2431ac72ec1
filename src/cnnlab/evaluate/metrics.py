"""Classification metrics computed on the device with one host sync per evaluation.

top-k accuracy: the true label is among the k highest logits (Krizhevsky et al. 2012 report top-1 and
top-5 error = 1 - accuracy). Top-1 is `argmax`, the first of tied maxima, as torchmetrics, timm and
scikit-learn count it (ties are common under bf16); `topk`'s order among ties is unspecified, so it only
decides the other four of the top 5, and a correct top-1 always counts for top-5. The confusion matrix
counts (true, predicted) pairs with one bincount per batch; per-class accuracy (recall) is its diagonal
over its row sums.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .tta import averaged


@torch.inference_mode()
def evaluate_model(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    num_classes: int,
    autocast: Any = None,
    confusion: bool = False,
    tta: str = "none",
    size: int = 0,
    per_image: bool = False,
) -> dict[str, Any]:
    """loss (mean cross-entropy), acc (top-1), top5, count, and optionally the confusion matrix and the
    per-image results (`predicted` and `label`, int64 on the CPU, in the order of the batches: the verdicts
    compare two runs image by image). The per-image tensors stay on the device until the one final sync."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    loss_sum = torch.zeros((), dtype=torch.float64 if device.type != "mps" else torch.float32, device=device)
    top1 = torch.zeros((), dtype=torch.int64, device=device)
    top5 = torch.zeros((), dtype=torch.int64, device=device)
    matrix = torch.zeros(num_classes * num_classes, dtype=torch.int64, device=device) if confusion else None
    count = 0
    k = min(5, num_classes)
    predictions: list[torch.Tensor] = []
    labels_seen: list[torch.Tensor] = []
    for images, labels in batches:
        with autocast() if autocast is not None else contextlib.nullcontext():
            if tta == "none":
                logits = model(images)
            else:  # the softmax averaged over the views: its log is what the loss and top-k read
                logits = averaged(model, images, tta, size or images.shape[-1])[1].clamp_min(1e-30).log()
        logits = logits.float()
        loss_sum += F.cross_entropy(logits, labels, reduction="sum").to(loss_sum.dtype)
        predicted = logits.argmax(dim=1)
        hit1, hit5 = topk_hits(logits, labels, predicted, k)
        top1 += hit1.sum()
        top5 += hit5.sum()
        if per_image:
            predictions.append(predicted)
            labels_seen.append(labels)
        if matrix is not None:
            matrix += torch.bincount(labels * num_classes + predicted, minlength=num_classes * num_classes)
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
    if per_image:
        empty = torch.zeros(0, dtype=torch.int64)
        result["predicted"] = torch.cat(predictions).cpu() if predictions else empty
        result["label"] = torch.cat(labels_seen).cpu() if labels_seen else empty
    return result


def topk_hits(scores: torch.Tensor, labels: torch.Tensor, predicted: torch.Tensor | None = None,
              k: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample (top-1 hit, top-k hit) booleans; top-1 by argmax."""
    predicted = scores.argmax(dim=1) if predicted is None else predicted
    hit1 = predicted == labels
    top = scores.topk(min(k, scores.shape[1]), dim=1).indices
    return hit1, hit1 | (top == labels[:, None]).any(dim=1)


def per_class_accuracy(confusion: torch.Tensor) -> list[float | None]:
    """Recall of each class (None for a class with no samples)."""
    totals = confusion.sum(dim=1)
    return [None if int(t) == 0 else float(confusion[i, i]) / float(t) for i, t in enumerate(totals)]
