"""In-memory image sets and the registry entry of a dataset source."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch


@dataclass(frozen=True)
class ImageSet:
    """Images as one uint8 tensor [N, C, H, W] and labels as int64 [N], on the CPU until a loader moves them."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be uint8 [N, C, H, W], got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"{self.images.shape[0]} images but labels of shape {tuple(self.labels.shape)}")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, indices: torch.Tensor) -> ImageSet:
        return ImageSet(self.images[indices].contiguous(), self.labels[indices].contiguous())

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def size(self) -> tuple[int, int]:
        return int(self.images.shape[2]), int(self.images.shape[3])


@dataclass(frozen=True)
class RawDataset:
    """What a source reader returns: its official train and test sets and the class names."""

    train: ImageSet
    test: ImageSet
    classes: tuple[str, ...]
    source: str  # where it was read from, for run.json and messages


@dataclass(frozen=True)
class DatasetInfo:
    """A registry entry: a reader `load(roots) -> RawDataset` and what a user needs to know about it."""

    name: str
    load: Callable[[list[Path]], RawDataset]
    shape: tuple[int, int, int]  # native (C, H, W)
    num_classes: int
    description: str
    how_to_get: str = ""
    augment: dict = field(default_factory=dict)  # the standard training augmentation (AugmentConfig fields)


def make_dataset_info(load: Callable[[list[Path]], RawDataset], *, name: str, **meta) -> DatasetInfo:
    return DatasetInfo(name=name, load=load, **meta)
