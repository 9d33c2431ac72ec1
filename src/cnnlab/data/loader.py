"""The device-resident loader: the whole dataset as uint8 on the device, batches gathered there.

Per-sample Python loaders (Dataset.__getitem__ + collate) spend most of a small CNN's step in the
interpreter. Here an epoch is one permutation, each batch one gather, the augmentation of data/augment.py
and one fused scale-and-shift on the device, with no host synchronisation. The permutation is a pure
function of (seed, epoch), drawn on the CPU so CPU and GPU runs see the same order, which also makes the
data position of a checkpoint just (epoch, step).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from ..errors import ConfigError
from .augment import AugmentPlan, Draws, center_crop, color_jitter, epoch_draws, erase, geometric, pca_lighting
from .base import ImageSet


def epoch_permutation(num_samples: int, seed: int, epoch: int) -> torch.Tensor:
    """The training order of `epoch`: reproducible from (seed, epoch) alone."""
    generator = torch.Generator().manual_seed((seed * 1_000_003 + epoch) % (2**63))
    return torch.randperm(num_samples, generator=generator)


class Normalizer:
    """uint8 (or float in [0, 255]) -> normalised float32, with the photometric augmentation and random
    erasing of a plan applied around it. (x / 255 - mean) / std is x * scale + shift."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], device: torch.device | str = "cpu",
                 channels_last: bool = False, pca: tuple | None = None) -> None:
        std_t = torch.tensor(std, dtype=torch.float32)
        self.pca = None  # (stds [C], vectors [C, C]) of the training set's colours, for PCA lighting
        if pca is not None and len(pca[0]):
            self.pca = (torch.tensor(pca[0], dtype=torch.float32).to(device),
                        torch.tensor(pca[1], dtype=torch.float32).to(device))
        self.scale = (1.0 / (255.0 * std_t)).view(1, -1, 1, 1).to(device)
        self.shift = (-torch.tensor(mean, dtype=torch.float32) / std_t).view(1, -1, 1, 1).to(device)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __call__(self, images: torch.Tensor, plan: AugmentPlan | None = None,
                 draws: Draws | None = None) -> torch.Tensor:
        x = images.to(dtype=torch.float32, memory_format=self.memory_format)
        if plan is not None and draws is None:
            raise ValueError("an augmentation plan needs its draws (data/augment.epoch_draws)")
        if plan is not None and draws is not None and plan.color_jitter > 0:
            x = color_jitter(x, draws.need("jitter"))
        if plan is not None and draws is not None and plan.pca_lighting > 0:
            if self.pca is None:
                raise ConfigError("augment.pca_lighting needs the training set's colour PCA, which this data "
                                  "description lacks: train the run again (it is computed when the run starts)")
            x = pca_lighting(x, draws.need("lighting"), *self.pca, scale=plan.pca_lighting_scale)
        if x.data_ptr() == images.data_ptr():
            x = x.clone()  # never scale the caller's tensor in place
        x = x.mul_(self.scale).add_(self.shift)  # in place: 2x faster than a broadcast addcmul on the CPU
        if plan is not None and draws is not None and plan.erasing > 0:
            x = erase(x, plan.erasing, draws.need("erase"))
        return x

    def undo(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images back to pixels in [0, 1] (for pictures)."""
        return ((x.float() - self.shift) / self.scale / 255.0).clamp(0, 1)


class DeviceBatches:
    """Batches of (normalised float images [B, C, S, S], int64 labels [B]) from tensors on `device`.

    `drop_last` keeps every training batch the same shape (what CUDA graphs and compiled steps need);
    evaluation keeps the last partial batch so every image is scored. Images larger than `size` (a
    decoded cache at 256 for 224 inputs) are cropped: randomly in training, centrally in evaluation."""

    def __init__(
        self,
        data: ImageSet,
        mean: Sequence[float],
        std: Sequence[float],
        batch_size: int,
        device: torch.device | str = "cpu",
        *,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int = 0,
        channels_last: bool = False,
        augment: AugmentPlan | None = None,
        size: int | None = None,
        pca: tuple | None = None,
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        self.device = torch.device(device)
        self.shard = shard  # (rank, world): this process's slice of every batch (train/distributed.py)
        self.images = data.images.to(self.device)
        self.labels = data.labels.to(self.device)
        self.batch_size = batch_size
        self.shuffle, self.drop_last, self.seed = shuffle, drop_last, seed
        self.size = size or data.size[0]
        self.augment = augment if augment is not None and augment.active else None
        self.normalize = Normalizer(mean, std, self.device, channels_last, pca)

    @property
    def num_samples(self) -> int:
        return int(self.labels.shape[0])

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_samples // self.batch_size
        return -(-self.num_samples // self.batch_size)

    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches of `epoch`, beginning at batch index `start` (a resumed epoch skips what it did)."""
        order = epoch_permutation(self.num_samples, self.seed, epoch).to(self.device) if self.shuffle else None
        plan = self.augment
        draws = epoch_draws(plan, self.num_samples, self.seed, epoch, self.device) if plan else None
        for index in range(start, len(self)):
            lo = index * self.batch_size
            hi = min(lo + self.batch_size, self.num_samples)
            if self.shard[1] > 1:  # rank r of W: the r-th W-th of the global batch, same order, same draws
                share = (hi - lo) // self.shard[1]
                lo, hi = lo + self.shard[0] * share, lo + (self.shard[0] + 1) * share
            if order is None:
                images, labels = self.images[lo:hi], self.labels[lo:hi]
            else:
                picked = order[lo:hi]
                images, labels = self.images[picked], self.labels[picked]
            if plan is not None and draws is not None:  # drawn above whenever there is a plan
                batch_draws = draws.slice(lo, hi)
                yield self.normalize(geometric(images, plan, batch_draws, self.size), plan, batch_draws), labels
            else:
                if images.shape[-1] != self.size or images.shape[-2] != self.size:
                    images = center_crop(images, self.size)
                yield self.normalize(images), labels

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.batches()
