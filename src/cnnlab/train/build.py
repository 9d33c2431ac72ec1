"""Factories of what a run computes with: the data splits, their loaders, the model.

Each takes the narrow part of the config it needs (a `LoaderSpec` for a loader, the model section for a
model), so evaluation, prediction, features and the pictures rebuild exactly what training used without
copying a whole RunConfig to change one number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import torch
from torch import nn

from ..config import AugmentConfig, DataConfig, ModelConfig, OptimConfig, RunConfig
from ..data import (
    AugmentPlan,
    Batches,
    DataSpec,
    DataSplits,
    DeviceBatches,
    FileList,
    ImageSet,
    Split,
    choose_image_size,
    load_raw,
    prepare,
)
from ..errors import ConfigError
from ..models import MODELS, build_model, model_fits
from ..models.transfer import head_module
from ..optim import build_optimizer
from .runtime import Runtime

STREAM_EVAL_BATCH = 256  # folder evaluation: decoded in workers and queued as float (1024 x 3x224x224 = 616 MB)
# evaluation on the CPU: a batch's activations must stay in the caches; convnet at 1x32x32 on a 32 MB L3
# (AMD EPYC, one thread, inference mode) ran 12,600 img/s at batch 64 or 256 but 6,700 at 1024, 5,600 at 4096
CPU_EVAL_BATCH = 256


# ---------------------------------------------------------------------------------------------- data
def load_splits(data: DataConfig, model: ModelConfig, image_size: int | None = None,
                lighting: bool = False) -> DataSplits:
    """Read the dataset and shape it for the model (the input size is chosen here, see DataSpec); with
    `lighting`, the training set's colour PCA too (for augment.pca_lighting)."""
    raw = load_raw(data)
    info = MODELS.get(model.name)
    if image_size is None and isinstance(raw.train, FileList):  # images of any size: the model's input
        image_size = data.image_size or info.input_size[-1]
    if image_size is None:
        channels = data.channels or raw.train.channels
        image_size = choose_image_size(
            raw.train.size[0], data.image_size,
            lambda s: model_fits(model.name, model.options, channels, s), info.input_size[-1],
        )
    return prepare(data, raw, image_size, lighting)


def splits_of(config: RunConfig, image_size: int | None = None) -> DataSplits:
    lighting = config.augment.enabled and bool(config.augment.pca_lighting)
    return load_splits(config.data, config.model, image_size, lighting)


@dataclass(frozen=True)
class LoaderSpec:
    """How one split is batched: size, order, augmentation, and the folder loader's workers."""

    batch_size: int | Literal["full"]
    shuffle: bool = False
    seed: int = 0
    augment: AugmentPlan | None = None
    training: bool = False  # fixed-shape batches (the last partial one dropped)
    workers: int | None = None
    max_pixels: int = 89_478_485
    shard: tuple[int, int] = (0, 1)  # (rank, world) of a distributed run: this process's slice of each batch

    @classmethod
    def for_training(cls, config: RunConfig) -> LoaderSpec:
        return cls(config.train.batch_size, config.data.shuffle, config.seed, augment_plan(config.augment),
                   training=True, workers=config.data.workers, max_pixels=config.data.max_pixels)

    @classmethod
    def for_evaluation(cls, config: RunConfig, batch_size: int | None = None) -> LoaderSpec:
        return cls(batch_size or config.train.eval_batch_size, seed=config.seed, workers=config.data.workers,
                   max_pixels=config.data.max_pixels)


def augment_plan(config: AugmentConfig) -> AugmentPlan:
    return AugmentPlan.from_config(config)


def train_batch_size(batch_size: int | Literal["full"], num_samples: int) -> int:
    """A training batch size against the split it batches; 'full' is the whole split (batch gradient descent)."""
    size = num_samples if batch_size == "full" else batch_size
    if size > num_samples:
        raise ConfigError(
            f"train.batch_size={size} is larger than the training set ({num_samples} images); "
            "lower it (full-batch gradient descent: batch_size=full)"
        )
    return size


def make_batches(split: Split, spec: DataSpec, loader: LoaderSpec, runtime: Runtime, cache: object = None) -> Batches:
    """The loader of one split: on the device for in-memory data, through workers for image folders."""
    batch_size = train_batch_size(loader.batch_size, len(split)) if loader.training else \
        (len(split) if loader.batch_size == "full" else loader.batch_size)
    if not loader.training and loader.batch_size != "full" and runtime.device.type == "cpu":
        batch_size = min(batch_size, CPU_EVAL_BATCH)  # the same scores, twice as fast
    plan = loader.augment if loader.training else None
    shuffle = loader.training and loader.shuffle
    pca = (spec.pca_std, spec.pca_vectors) if spec.pca_std else None
    if isinstance(split, ImageSet):
        return DeviceBatches(split, spec.mean, spec.std, batch_size, runtime.device, shuffle=shuffle,
                             drop_last=loader.training, seed=loader.seed, channels_last=runtime.channels_last,
                             augment=plan, size=spec.image_size, pca=pca, shard=loader.shard)
    if loader.shard[1] > 1:
        raise ConfigError("a distributed run (torchrun, --nproc) needs an in-memory dataset for now: image "
                          "folders stream through loader workers that do not shard yet; train on one process")
    from ..data.scan import default_workers
    from ..data.stream import FolderDataset, StreamBatches
    from ..data.transforms import eval_transform, train_transform

    if loader.training:
        transform = train_transform(plan, spec.image_size)
    else:
        transform = eval_transform(spec.image_size, spec.eval_resize)
        batch_size = min(batch_size, STREAM_EVAL_BATCH)
    dataset = FolderDataset(split, transform, spec.channels, loader.max_pixels, loader.seed, cache=cache,
                            draft=spec.eval_resize)
    workers = default_workers() if loader.workers is None else loader.workers
    return StreamBatches(dataset, spec.mean, spec.std, batch_size, runtime.device, shuffle=shuffle,
                         drop_last=loader.training, seed=loader.seed, channels_last=runtime.channels_last,
                         augment=plan.device_part() if plan else None, workers=workers, pca=pca)


def split_batches(splits: DataSplits, name: str, loader: LoaderSpec, runtime: Runtime) -> Batches:
    """The loader of the split called `name` ('train', 'val', 'test')."""
    split = getattr(splits, name)
    if split is None:
        raise ConfigError(f"there is no {name} split (data.val_fraction is 0)")
    return make_batches(split, splits.spec, loader, runtime, splits.cache)


# --------------------------------------------------------------------------------------------- model
def make_model(model: ModelConfig, spec: DataSpec, runtime: Runtime) -> nn.Module:
    net = build_model(model.name, model.options, num_classes=spec.num_classes, in_channels=spec.channels,
                      image_size=spec.image_size)
    memory_format = torch.channels_last if runtime.channels_last else torch.preserve_format
    return net.to(device=runtime.device, memory_format=memory_format)


def make_optimizer(optim: OptimConfig, model: nn.Module) -> torch.optim.Optimizer:
    """The run's optimizer: parameter groups with the output layer as the head (for backbone_lr_factor)."""
    head = head_module(model)
    return build_optimizer(optim, model, head.parameters() if head is not None else ())


def checkpoint_bytes(model: ModelConfig, spec: DataSpec, optimizer_slots: int = 2) -> int:
    """About how much disk the run's checkpoints take: weights plus optimizer state (`optimizer_slots`
    tensors per weight), in last, previous and best. Built on the meta device: no memory, no time."""
    with torch.device("meta"):
        net = build_model(model.name, model.options, num_classes=spec.num_classes, in_channels=spec.channels,
                          image_size=spec.image_size)
    weights = sum(p.numel() * p.element_size() for p in net.parameters())
    return math.ceil(weights * ((1 + optimizer_slots) * 2 + 1) * 1.05)


def evaluation_spec(spec: DataSpec, splits: DataSplits) -> DataSplits:
    """`splits` re-described with a run's saved spec (its own mean/std and classes, not recomputed)."""
    return replace(splits, spec=spec)
