"""Model outputs over a whole split, kept on the device until the end: logits (optionally averaged with
the horizontally flipped images: test-time augmentation) and the penultimate features."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from .metrics import topk_hits


@torch.no_grad()
def collect_outputs(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], autocast: Any = None,
                    flip: bool = False, features: bool = False) -> dict[str, torch.Tensor]:
    """{'logits', 'labels'} (+ 'probs' averaged over the flip when `flip`, + 'features') on the CPU."""
    from ..models.transfer import penultimate

    model.eval()
    outputs: dict[str, list[torch.Tensor]] = {"logits": [], "probs": [], "labels": [], "features": []}
    for images, labels in batches:
        with autocast() if autocast is not None else contextlib.nullcontext():
            if features:
                feats, logits = penultimate(model, images)
                outputs["features"].append(feats.float())
            else:
                logits = model(images)
            probs = logits.float().softmax(dim=1)
            if flip:  # the mirror image is as likely as the image (the flip the nets were trained with)
                flipped = model(images.flip(-1)).float()
                probs = (probs + flipped.softmax(dim=1)) / 2
                logits = (logits.float() + flipped) / 2
        outputs["logits"].append(logits.float())
        outputs["probs"].append(probs)
        outputs["labels"].append(labels)
    return {k: torch.cat(v).cpu() for k, v in outputs.items() if v}


def topk_accuracy(scores: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Top-1 and top-5 (top-k for fewer than 5 classes) accuracy of class scores."""
    hit1, hit5 = topk_hits(scores, labels)
    return {"acc": hit1.double().mean().item(), "top5": hit5.double().mean().item(), "count": int(labels.shape[0])}
