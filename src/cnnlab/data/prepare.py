"""From a dataset source to what a run trains on: class selection, splits, input size, normalisation.

Small datasets are reshaped once, on whole uint8 tensors (channels, zero-padding or resizing); folder
datasets are checked file by file (or decoded once into a cache) before the first step. The resulting
`DataSpec` (classes, size, channels, mean/std, eval resize) is written to run.json so evaluation and
prediction rebuild exactly the same inputs; folder splits are written to split.json.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..config import DataConfig
from ..errors import ConfigError, DataError
from .base import FileList, ImageSet, Source, Split
from .registry import DATASETS
from .roots import candidate_roots
from .splits import carve, class_selection, per_class_split, remap_labels

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_CHUNK = 4096  # images converted per chunk: bounds the float32 temporaries


@dataclass(frozen=True)
class DataSpec:
    """What a trained model expects as input; saved with the run."""

    dataset: str
    classes: tuple[str, ...]
    channels: int
    image_size: int
    mean: tuple[float, ...]  # per channel, in [0, 1] pixel units
    std: tuple[float, ...]
    sizes: dict[str, int]
    source: str
    native_size: int = 0  # the dataset's own image side, before fit_size (0: images of any size)
    resize: str = "auto"  # how native images were brought to image_size (fit_size's mode)
    eval_resize: int = 0  # folder datasets: shorter side resized to this, then the centre image_size crop

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["classes"], data["mean"], data["std"] = list(self.classes), list(self.mean), list(self.std)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataSpec:
        return cls(**{**data, "classes": tuple(data["classes"]), "mean": tuple(data["mean"]),
                      "std": tuple(data["std"])})


@dataclass(frozen=True)
class DataSplits:
    train: Split
    val: Split | None  # None when data.val_fraction is 0
    test: Split
    spec: DataSpec
    cache: Any = None  # the DecodedCache of a folder dataset with data.cache=disk
    bad_files: dict[str, str] = field(default_factory=dict)  # skipped with data.skip_bad
    notes: tuple[str, ...] = ()
    split_record: dict[str, Any] | None = None  # folder datasets: the file lists, for split.json


def load_raw(config: DataConfig) -> Source:
    return DATASETS.get(config.name).load(config, candidate_roots(config.root))


def choose_image_size(native: int, requested: int | None, fits: Callable[[int], bool], default: int) -> int:
    """The input size, in this order: what was asked for; the model's own size when the image is a
    little smaller (a gap of at most a quarter of the side is zero-padded, as LeCun padded MNIST's
    28x28 digits to LeNet-5's 32x32; the seed network was also designed for 32x32); the native size when
    the model accepts it; else the smallest of 32, 64, 128 or the model's size that it accepts (8x8
    digits become 32x32 for the seed network and for AlexNet's small-input stem, not 227x227)."""
    if requested:
        return requested
    if native < default and default - native <= native // 4:
        return default
    if fits(native):
        return native
    for size in (32, 64, 128):
        if native < size < default and fits(size):
            return size
    return default


# ------------------------------------------------------------------------------------- splitting
def select_classes(source: Source, config: DataConfig) -> Source:
    kept = class_selection(source.classes, config.classes, config.exclude_classes)
    if len(kept) == len(source.classes):
        return source

    def pick(split: Split | None) -> Split | None:
        if split is None:
            return None
        mask, labels = remap_labels(split.labels, kept, len(source.classes))
        return split.relabel(labels).subset(torch.nonzero(mask).flatten())

    classes = tuple(source.classes[i] for i in kept)
    return replace(source, train=pick(source.train), test=pick(source.test), val=pick(source.val), classes=classes)


def split_source(source: Source, config: DataConfig) -> tuple[Split, Split | None, Split]:
    """(train, val, test): the test split carved first when the source has none, then validation."""
    train, test, val = source.train, source.test, source.val
    seed = config.split_seed
    if test is None:
        keep, held = carve(train.labels, config.test_fraction, config.test_per_class, seed)
        if len(held) == 0:
            raise ConfigError(f"dataset '{config.name}' has no test split: set data.test_fraction or test_per_class")
        train, test = train.subset(keep), train.subset(held)
    if val is None and (config.val_fraction > 0 or config.val_per_class):
        keep, held = carve(train.labels, config.val_fraction, config.val_per_class, seed + 1)
        train, val = train.subset(keep), train.subset(held)
    if config.train_per_class:
        _, picked = per_class_split(train.labels, config.train_per_class, seed + 2)
        train = train.subset(picked)
    if config.train_limit:
        train = train.subset(torch.arange(min(config.train_limit, len(train))))
    return train, val, test


def prepare(config: DataConfig, raw: Source, image_size: int) -> DataSplits:
    source = select_classes(raw, config)
    if isinstance(source.train, FileList):
        from .prepare_files import prepare_files

        return prepare_files(config, source, image_size)
    if config.split_file:
        raise ConfigError(f"data.split_file applies to folder datasets; '{config.name}' splits are always reproducible")
    train, val, test = split_source(source, config)
    channels = config.channels or raw.train.channels
    train, test = (_shape(s, channels, image_size, config.resize) for s in (train, test))
    val = None if val is None else _shape(val, channels, image_size, config.resize)
    mean, std = normalization(config.normalize, train.images)
    sizes = {"train": len(train), "val": len(val) if val is not None else 0, "test": len(test)}
    spec = DataSpec(config.name, source.classes, channels, image_size, mean, std, sizes, source.source,
                    native_size=raw.train.size[0], resize=config.resize)
    return DataSplits(train, val, test, spec, notes=source.notes)


def read_split_file(path: str | Path) -> dict[str, Any]:
    try:
        record = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"data.split_file '{path}' does not exist") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"data.split_file '{path}' is not a cnnlab split.json ({exc})") from None
    if not isinstance(record, dict) or not {"classes", "train", "test"} <= set(record):
        raise DataError(f"data.split_file '{path}' lacks 'classes', 'train' or 'test'")
    return record


# ------------------------------------------------------------------------------------- pixels
def _shape(data: ImageSet, channels: int, size: int, mode: str) -> ImageSet:
    images = convert_channels(data.images, channels)
    images = fit_size(images, size, mode)
    return ImageSet(images, data.labels)


def convert_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 [N, C, H, W] with C converted to `channels` (1 <-> 3)."""
    have = images.shape[1]
    if have == channels:
        return images
    if have == 1 and channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    if have == 3 and channels == 1:  # ITU-R BT.601 luma, as PIL's convert('L')
        weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        return _chunked(images, lambda x: (x * weights).sum(1, keepdim=True))
    raise ValueError(f"cannot convert {have} channels to {channels}")


def fit_size(images: torch.Tensor, size: int, mode: str = "auto") -> torch.Tensor:
    """Square `size` x `size` images. 'pad' centres the image on zeros (LeCun's 28 -> 32 for LeNet-5);
    'resize' interpolates (bilinear, antialiased when shrinking); 'auto' pads gaps of at most a quarter
    of the side and resizes otherwise."""
    height, width = images.shape[-2:]
    if (height, width) == (size, size):
        return images
    gap = size - max(height, width)
    if mode == "pad" or (mode == "auto" and 0 < gap and height == width and gap <= height // 4):
        if gap < 0:
            raise ValueError(f"cannot pad {height}x{width} images down to {size}x{size}; use data.resize=resize")
        top, left = (size - height) // 2, (size - width) // 2
        return F.pad(images, (left, size - width - left, top, size - height - top))
    antialias = size < max(height, width)
    return _chunked(images, lambda x: F.interpolate(x, size=(size, size), mode="bilinear",
                                                    align_corners=False, antialias=antialias))


def _chunked(images: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    out = [fn(images[i : i + _CHUNK].float()).round_().clamp_(0, 255).to(torch.uint8)
           for i in range(0, images.shape[0], _CHUNK)]
    return torch.cat(out)


def normalization(kind: str, train_images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (mean, std) in [0, 1] units; inputs become (x / 255 - mean) / std."""
    channels = train_images.shape[1]
    if kind == "centered":
        return (0.5,) * channels, (1.0,) * channels
    if kind == "unit":
        return (0.0,) * channels, (1.0,) * channels
    if kind == "imagenet":
        if channels == 3:
            return IMAGENET_MEAN, IMAGENET_STD
        return (sum(IMAGENET_MEAN) / 3,) * channels, (sum(IMAGENET_STD) / 3,) * channels
    return channel_stats(train_images)


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Exact per-channel mean and std (float64 sums in chunks, so 60k images need no large temporary)."""
    channels = images.shape[1]
    total = torch.zeros(channels, dtype=torch.float64)
    squares = torch.zeros(channels, dtype=torch.float64)
    for i in range(0, images.shape[0], _CHUNK):
        chunk = torch.as_tensor(images[i : i + _CHUNK]).to(torch.float64) / 255.0
        total += chunk.sum(dim=(0, 2, 3))
        squares += chunk.square().sum(dim=(0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / count
    std = (squares / count - mean.square()).clamp_min(1e-12).sqrt()
    return tuple(round(float(m), 6) for m in mean), tuple(round(float(s), 6) for s in std)
