"""Mixup and CutMix: whole training batches mixed on the device, with soft targets.

- mixup (Zhang et al. 2018, "mixup: Beyond Empirical Risk Minimization", eq. 1): x = lam x_i + (1 - lam) x_j,
  y = lam y_i + (1 - lam) y_j with one-hot y and lam ~ Beta(alpha, alpha), one lam per batch;
- CutMix (Yun et al. 2019, "CutMix: Regularization Strategy to Train Strong Classifiers with Localizable
  Features", eq. 1-2): a box of image j pasted into image i, of side sqrt(1 - lam) times the image's, centred
  uniformly; the box is clipped at the border and lam is then corrected to the real pasted area, lam = 1 -
  box area / image area, so the targets say how much of each image is there (torchvision's v2.CutMix and
  timm do the same).
The partner j of image i is its neighbour in the (already shuffled) batch, `roll(1)`, as torchvision's
v2.MixUp/CutMix pair them. Those transforms are not used because they draw from the global RNG and apply
to every batch: here every batch's draws (mixed?, which kind, lam, box centre) are drawn for a whole epoch
at its start from a generator seeded by (seed, epoch), as data/augment.py draws its parameters, so a
resumed run, a CPU or a GPU run mix exactly the same batches, and the step branches only on Python values
drawn on the CPU (no host sync). Accuracy is still counted against the hard label (train/trainer.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

MIX_STREAM = 0x6D6978  # a stream apart from the permutation's and the augmentation's of the same (seed, epoch)


@dataclass(frozen=True)
class MixPlan:
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    mix_prob: float = 1.0
    switch_prob: float = 0.5  # with both on: probability of CutMix

    @property
    def active(self) -> bool:
        return self.mixup_alpha > 0 or self.cutmix_alpha > 0

    @classmethod
    def from_config(cls, augment) -> MixPlan:
        return cls(augment.mixup_alpha, augment.cutmix_alpha, augment.mix_prob, augment.mix_switch_prob)


@dataclass(frozen=True)
class MixDraw:
    """One batch's draw: kind ('none', 'mixup', 'cutmix'), lam ~ Beta, and CutMix's box centre (fractions)."""

    kind: str = "none"
    lam: float = 1.0
    center: tuple[float, float] = (0.5, 0.5)  # (row, column) as fractions of the height and width


def epoch_mix_draws(plan: MixPlan, count: int, seed: int, epoch: int) -> list[MixDraw]:
    """The draws of an epoch's `count` batches, a pure function of (plan, count, seed, epoch)."""
    generator = np.random.default_rng([seed % 2**64, epoch, MIX_STREAM])
    uniforms = generator.random((count, 4))  # mixed?, CutMix?, centre row, centre column
    on_mixup, on_cutmix = plan.mixup_alpha > 0, plan.cutmix_alpha > 0  # a kind that is off draws nothing
    mixup = generator.beta(plan.mixup_alpha, plan.mixup_alpha, count) if on_mixup else np.ones(count)
    cutmix = generator.beta(plan.cutmix_alpha, plan.cutmix_alpha, count) if on_cutmix else np.ones(count)
    draws = []
    for index in range(count):
        use_cutmix = on_cutmix and (not on_mixup or uniforms[index, 1] < plan.switch_prob)
        if not plan.active or uniforms[index, 0] >= plan.mix_prob:
            draws.append(MixDraw())
        elif use_cutmix:
            center = (float(uniforms[index, 2]), float(uniforms[index, 3]))
            draws.append(MixDraw("cutmix", float(cutmix[index]), center))
        else:
            draws.append(MixDraw("mixup", float(mixup[index])))
    return draws


def cutmix_box(height: int, width: int, draw: MixDraw) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the pasted box: sides sqrt(1 - lam) x the image's around the centre,
    clipped at the border (Yun et al. 2019, appendix). torchvision v2.CutMix's arithmetic, box for box: each side
    is twice int(side x sqrt(1 - lam) / 2), an even number of pixels. timm's rand_bbox makes it
    int(side x sqrt(1 - lam)), so where that is odd timm's box is 1 px longer on that side (both then set lam
    from the real area, so the targets match each box)."""
    half = 0.5 * math.sqrt(1.0 - draw.lam)
    row, column = int(draw.center[0] * height), int(draw.center[1] * width)
    half_h, half_w = int(half * height), int(half * width)
    return (max(row - half_h, 0), min(row + half_h, height), max(column - half_w, 0), min(column + half_w, width))


def mix_batch(images: torch.Tensor, labels: torch.Tensor, num_classes: int,
              draw: MixDraw) -> tuple[torch.Tensor, torch.Tensor]:
    """(images, soft targets [B, num_classes]) of one batch; image i is mixed with image i - 1."""
    targets = F.one_hot(labels, num_classes).to(torch.float32)
    if draw.kind == "none":
        return images, targets
    partner, partner_targets = images.roll(1, 0), targets.roll(1, 0)
    if draw.kind == "mixup":
        lam = draw.lam
        mixed = images * lam + partner * (1.0 - lam)
    else:
        height, width = images.shape[-2:]
        top, bottom, left, right = cutmix_box(height, width, draw)
        mixed = images.clone()
        mixed[..., top:bottom, left:right] = partner[..., top:bottom, left:right]
        lam = 1.0 - (bottom - top) * (right - left) / (height * width)  # the real pasted area
    return mixed, targets * lam + partner_targets * (1.0 - lam)


class Mixer:
    """The training loop's mixing: `(images, labels, batch index) -> (images, targets)`, the epoch's draws
    made once per epoch. Inactive plans pass the hard labels through."""

    def __init__(self, plan: MixPlan, batches_per_epoch: int, seed: int) -> None:
        self.plan, self.count, self.seed = plan, batches_per_epoch, seed
        self._epoch: tuple[int, list[MixDraw]] | None = None

    def __call__(self, images: torch.Tensor, labels: torch.Tensor, num_classes: int, epoch: int,
                 index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.plan.active:
            return images, labels
        if self._epoch is None or self._epoch[0] != epoch:
            self._epoch = (epoch, epoch_mix_draws(self.plan, self.count, self.seed, epoch))
        return mix_batch(images, labels, num_classes, self._epoch[1][index])
