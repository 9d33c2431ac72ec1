"""Model outputs over a whole split, kept on the device until the end: logits (optionally averaged with
the horizontally flipped images: test-time augmentation) and the penultimate features."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from .metrics import topk_hits
from .tta import averaged


@torch.no_grad()
def collect_outputs(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], autocast: Any = None,
                    tta: str = "none", features: bool = False, size: int = 0) -> dict[str, torch.Tensor]:
    """{'logits', 'labels', 'probs'} (averaged over the test-time views of `tta`, evaluate/tta.py) and, with
    `features`, the penultimate vectors, on the CPU. `size` is the model's input side (for crops)."""
    from ..models.transfer import penultimate

    model.eval()
    outputs: dict[str, list[torch.Tensor]] = {"logits": [], "probs": [], "labels": [], "features": []}
    for images, labels in batches:
        with autocast() if autocast is not None else contextlib.nullcontext():
            if features:
                feats, logits = penultimate(model, images)
                outputs["features"].append(feats.float())
                probs = logits.float().softmax(dim=1)
            else:
                logits, probs = averaged(model, images, tta, size or images.shape[-1])
        outputs["logits"].append(logits.float())
        outputs["probs"].append(probs)
        outputs["labels"].append(labels)
    return {k: torch.cat(v).cpu() for k, v in outputs.items() if v}


def topk_accuracy(scores: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Top-1 and top-5 (top-k for fewer than 5 classes) accuracy of class scores."""
    hit1, hit5 = topk_hits(scores, labels)
    return {"acc": hit1.double().mean().item(), "top5": hit5.double().mean().item(), "count": int(labels.shape[0])}
