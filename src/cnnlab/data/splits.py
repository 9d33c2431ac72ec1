"""Seeded, stratified splits: every class keeps its share in both parts."""

from __future__ import annotations

import numpy as np
import torch


def stratified_split(labels: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (keep, held_out) with round(fraction * n_c) of each class c held out, at least one when
    fraction > 0 and the class has two or more images. Both index lists are sorted, so the held-out part
    keeps the source order. Pure function of (labels, fraction, seed)."""
    labels_np = labels.cpu().numpy()
    rng = np.random.default_rng(seed)
    held: list[np.ndarray] = []
    for cls in np.unique(labels_np):
        members = np.flatnonzero(labels_np == cls)
        count = int(round(fraction * len(members)))
        if fraction > 0 and count == 0 and len(members) > 1:
            count = 1
        held.append(rng.permutation(members)[:count])
    held_out = np.sort(np.concatenate(held)) if held else np.empty(0, dtype=np.int64)
    mask = np.ones(len(labels_np), dtype=bool)
    mask[held_out] = False
    return torch.from_numpy(np.flatnonzero(mask)), torch.from_numpy(held_out.astype(np.int64))
