"""Batched augmentation on the device, with per-sample randomness and no per-sample Python.

The random draws of a whole epoch (a flip bit and a crop offset per training position) are made at the
start of the epoch from a CPU generator seeded by (seed, epoch), then moved to the device. So:
- each sample gets its own transform, computed for the whole batch in a few tensor ops;
- the training step itself draws nothing (what CUDA-graph capture needs);
- a resumed run regenerates exactly the same draws: augmentation is a pure function of (seed, epoch).

Transforms (uint8 in, uint8 out, before normalisation):
- horizontal flip with probability 1/2 (Krizhevsky et al. 2012, section 4.1);
- random crop after zero padding by `crop_padding` pixels on each side, i.e. translations of up to
  +-crop_padding (the standard CIFAR recipe of He et al. 2016 uses 4 on 32x32).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentPlan:
    hflip: bool = False
    crop_padding: int = 0

    @property
    def active(self) -> bool:
        return self.hflip or self.crop_padding > 0


@dataclass(frozen=True)
class Draws:
    """Random parameters for every position of one epoch, on the device."""

    flip: torch.Tensor | None  # bool [N]
    offsets: torch.Tensor | None  # int64 [N, 2]: (dy, dx) in [0, 2 * padding]

    def slice(self, lo: int, hi: int) -> Draws:
        return Draws(None if self.flip is None else self.flip[lo:hi],
                     None if self.offsets is None else self.offsets[lo:hi])


def epoch_draws(plan: AugmentPlan, count: int, seed: int, epoch: int, device: torch.device) -> Draws:
    # a different stream from the shuffling permutation of the same (seed, epoch)
    generator = torch.Generator().manual_seed((seed * 1_000_003 + epoch + 7_777_777_777) % (2**63))
    flip = torch.rand(count, generator=generator) < 0.5 if plan.hflip else None
    offsets = None
    if plan.crop_padding > 0:
        offsets = torch.randint(0, 2 * plan.crop_padding + 1, (count, 2), generator=generator)
    return Draws(None if flip is None else flip.to(device), None if offsets is None else offsets.to(device))


def apply(images: torch.Tensor, plan: AugmentPlan, draws: Draws) -> torch.Tensor:
    """Augment a uint8 batch [B, C, H, W] with its per-sample draws."""
    if draws.flip is not None:
        images = torch.where(draws.flip.view(-1, 1, 1, 1), images.flip(3), images)
    if draws.offsets is not None:
        images = shift_crop(images, plan.crop_padding, draws.offsets)
    return images


def shift_crop(images: torch.Tensor, padding: int, offsets: torch.Tensor) -> torch.Tensor:
    """Zero-pad by `padding`, then cut each sample's HxW window at its own (dy, dx): two gathers."""
    batch, channels, height, width = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))
    rows = offsets[:, 0:1] + torch.arange(height, device=images.device)  # [B, H]
    cols = offsets[:, 1:2] + torch.arange(width, device=images.device)  # [B, W]
    padded = padded.gather(2, rows.view(batch, 1, height, 1).expand(batch, channels, height, width + 2 * padding))
    return padded.gather(3, cols.view(batch, 1, 1, width).expand(batch, channels, height, width))
