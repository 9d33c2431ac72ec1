"""The device-resident loader: the whole dataset as uint8 on the device, batches gathered there.

Per-sample Python loaders (Dataset.__getitem__ + collate) spend most of a small CNN's step in the
interpreter. Here an epoch is one permutation, each batch one gather plus one fused scale-and-shift on
the device, with no host synchronisation. The permutation is a pure function of (seed, epoch), drawn on
the CPU so CPU and GPU runs see the same order, which also makes the data position of a checkpoint
just (epoch, step).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from .augment import AugmentPlan, apply, epoch_draws
from .base import ImageSet


def epoch_permutation(num_samples: int, seed: int, epoch: int) -> torch.Tensor:
    """The training order of `epoch`: reproducible from (seed, epoch) alone."""
    generator = torch.Generator().manual_seed((seed * 1_000_003 + epoch) % (2**63))
    return torch.randperm(num_samples, generator=generator)


class DeviceBatches:
    """Batches of (normalised float images [B, C, H, W], int64 labels [B]) from tensors on `device`.

    `drop_last` keeps every training batch the same shape (what CUDA graphs and compiled steps need);
    evaluation keeps the last partial batch so every image is scored."""

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
    ) -> None:
        self.device = torch.device(device)
        self.images = data.images.to(self.device)
        self.labels = data.labels.to(self.device)
        self.batch_size = batch_size
        self.shuffle, self.drop_last, self.seed = shuffle, drop_last, seed
        self.augment = augment if augment is not None and augment.active else None
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        std_t = torch.tensor(std, dtype=torch.float32)
        # (x / 255 - mean) / std as one multiply-add: x * scale + shift
        self.scale = (1.0 / (255.0 * std_t)).view(1, -1, 1, 1).to(self.device)
        self.shift = (-torch.tensor(mean, dtype=torch.float32) / std_t).view(1, -1, 1, 1).to(self.device)

    @property
    def num_samples(self) -> int:
        return int(self.labels.shape[0])

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_samples // self.batch_size
        return -(-self.num_samples // self.batch_size)

    def samples_per_epoch(self) -> int:
        return min(len(self) * self.batch_size, self.num_samples)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        x = images.to(dtype=torch.float32, memory_format=self.memory_format)
        return torch.addcmul(self.shift, x, self.scale)

    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches of `epoch`, beginning at batch index `start` (a resumed epoch skips what it did)."""
        order = epoch_permutation(self.num_samples, self.seed, epoch).to(self.device) if self.shuffle else None
        draws = epoch_draws(self.augment, self.num_samples, self.seed, epoch, self.device) if self.augment else None
        for index in range(start, len(self)):
            lo = index * self.batch_size
            hi = min(lo + self.batch_size, self.num_samples)
            if order is None:
                images, labels = self.images[lo:hi], self.labels[lo:hi]
            else:
                picked = order[lo:hi]
                images, labels = self.images[picked], self.labels[picked]
            if draws is not None:
                images = apply(images, self.augment, draws.slice(lo, hi))
            yield self.normalize(images), labels

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.batches()
