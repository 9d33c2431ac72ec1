"""From a dataset source to what a run trains on: class selection, splits, input size, normalisation.

Small datasets are reshaped once, on whole uint8 tensors (channels, zero-padding or resizing); folder
datasets are checked file by file (or decoded once into a cache) before the first step. The resulting
`DataSpec` (classes, size, channels, mean/std, eval resize) is written to run.json so evaluation and
prediction rebuild exactly the same inputs; folder splits are written to split.json.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import torch

from ..config import DataConfig
from ..config.components import dataset_defaults
from ..errors import ConfigError
from .base import FileList, Source, Split
from .leakage import leak_free
from .pixels import channel_stats, colour_pca, convert_channels, fit_size, normalization, shape_images
from .registry import DATASETS
from .roots import candidate_roots
from .spec import DataSpec, DataSplits
from .splits import class_selection, read_split_file, remap_labels, split_source
from .unused import check_coarse_labels, unused_data_keys

__all__ = ["DataSpec", "DataSplits", "channel_stats", "choose_image_size", "convert_channels", "fit_size",
           "load_raw", "normalization", "prepare", "read_split_file", "select_classes", "split_source"]


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
    kept = class_selection(source.classes, config.classes, config.exclude_classes,
                           dataset_defaults(config.name).exclude_classes)
    if len(kept) == len(source.classes):
        return source

    def pick(split: Split | None) -> Split | None:
        if split is None:
            return None
        mask, labels = remap_labels(split.labels, kept, len(source.classes))
        return split.relabel(labels).subset(torch.nonzero(mask).flatten())

    classes = tuple(source.classes[i] for i in kept)
    return replace(source, train=pick(source.train), test=pick(source.test), val=pick(source.val), classes=classes)


def prepare(config: DataConfig, raw: Source, image_size: int, lighting: bool = False) -> DataSplits:
    check_coarse_labels(config)
    source = select_classes(raw, config)
    if isinstance(source.train, FileList):
        from .prepare_files import prepare_files

        return prepare_files(config, source, image_size, lighting)
    if config.split_file:
        raise ConfigError(f"data.split_file applies to folder datasets; '{config.name}' splits are always reproducible")
    train, val, test = split_source(source, config)
    test, dropped = leak_free(config, train, val, test)
    unused = unused_data_keys(config, own_test=None if source.test is None else len(source.test), files=False,
                              train_size=len(train))
    channels = config.channels or raw.train.channels
    train, test = (shape_images(s, channels, image_size, config.resize) for s in (train, test))
    val = None if val is None else shape_images(val, channels, image_size, config.resize)
    mean, std = normalization(config.normalize, train.images)
    sizes = {"train": len(train), "val": len(val) if val is not None else 0, "test": len(test)}
    pca_std, pca_vectors = colour_pca(train.images) if lighting else ((), ())
    spec = DataSpec(config.name, source.classes, channels, image_size, mean, std, sizes, source.source,
                    native_size=raw.train.size[0], resize=config.resize, pca_std=pca_std, pca_vectors=pca_vectors)
    return DataSplits(train, val, test, spec, notes=source.notes + dropped + tuple(unused))


