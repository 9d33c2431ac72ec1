"""What readers return: in-memory image sets (small datasets) or file lists (folder datasets).

A reader is registered in `DATASETS` with `load(config, roots) -> Source`. Small datasets come back as
`ImageSet`s, whole uint8 tensors; folder datasets (Caltech-101, ImageNet-style trees) as `FileList`s,
paths and labels, decoded later by loader workers or once into a cache.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import torch

if TYPE_CHECKING:
    from ..config import DataConfig


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

    def relabel(self, labels: torch.Tensor) -> ImageSet:
        return ImageSet(self.images, labels)

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def size(self) -> tuple[int, int]:
        return int(self.images.shape[2]), int(self.images.shape[3])


@dataclass(frozen=True)
class FileList:
    """Image files (relative to `base`) and their labels; decoded on demand."""

    base: Path
    paths: tuple[str, ...]
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.labels.shape != (len(self.paths),):
            raise ValueError(f"{len(self.paths)} paths but labels of shape {tuple(self.labels.shape)}")

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, indices: torch.Tensor) -> FileList:
        picked = indices.tolist()
        return FileList(self.base, tuple(self.paths[i] for i in picked), self.labels[indices].contiguous())

    def relabel(self, labels: torch.Tensor) -> FileList:
        return FileList(self.base, self.paths, labels)

    def path(self, index: int) -> Path:
        return self.base / self.paths[index]

    def without(self, bad: set[str] | dict[str, str]) -> FileList:
        """The list minus the files whose full paths are in `bad`."""
        keep = torch.tensor([str(self.base / p) not in bad for p in self.paths], dtype=torch.bool)
        return self.subset(torch.nonzero(keep).flatten())


Split = ImageSet | FileList


@dataclass(frozen=True)
class Source:
    """A dataset as its reader found it. `test` is None when the source has no official test split
    (Caltech-101, a single image tree): one is then carved out, seeded and stratified. `val` is given
    only by sources that ship one (an image tree with train/ val/ test/ folders)."""

    train: Split
    test: Split | None
    classes: tuple[str, ...]
    source: str  # where it was read from, for run.json and messages
    val: Split | None = None
    notes: tuple[str, ...] = ()  # what the reader skipped and why (hidden files, empty folders, ...)


class Batches(Protocol):
    """What the Trainer consumes: DeviceBatches (in memory) and StreamBatches (files) both provide it."""

    batch_size: int

    def __len__(self) -> int: ...

    @property
    def num_samples(self) -> int: ...

    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...  # one pass in order (evaluation)


@dataclass(frozen=True)
class DatasetInfo:
    """A registry entry: a reader `load(config, roots) -> Source` and what a user needs to know about it."""

    name: str
    load: Callable[[DataConfig, list[Path]], Source]
    shape: tuple[int, int, int]  # native (C, H, W); (3, 0, 0) for folders of images of any size
    num_classes: int  # 0 when it depends on the folder
    description: str
    how_to_get: str = ""
    augment: dict = field(default_factory=dict)  # the standard training augmentation (AugmentConfig fields)
    exclude_classes: Sequence[str] = ()  # left out unless data.exclude_classes says otherwise
    streamed: bool = False  # files decoded by loader workers (folders) rather than held in memory


def make_dataset_info(load: Callable[..., Source], *, name: str, **meta) -> DatasetInfo:
    return DatasetInfo(name=name, load=load, **meta)
