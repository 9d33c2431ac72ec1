"""The typed sections of a run config: frozen dataclasses, validated on construction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import ConfigError


@dataclass(frozen=True)
class DataConfig:
    name: str = "digits"
    root: str | None = None  # None: --data-root, then $CNNLAB_DATA, then the per-user cache
    val_fraction: float = 0.1  # carved from the training set, stratified; the test set is never touched
    split_seed: int = 0  # fixed apart from the run seed, so repeats of a study share one split
    # standard: per-channel mean/std of the training split; centered: x/255 - 0.5 in [-0.5, 0.5] (the
    # seed study's scaling); unit: x/255 in [0, 1]; imagenet: torchvision's ImageNet mean/std
    normalize: Literal["standard", "centered", "unit", "imagenet"] = "standard"
    image_size: int | None = None  # None: the native size, or the model's input size if it needs more
    resize: Literal["auto", "pad", "resize"] = "auto"  # auto: zero-pad small gaps (28->32), else resize
    channels: int | None = None  # None: native; 1 or 3 converts (gray->RGB repeats, RGB->gray luminance)
    shuffle: bool = True  # reshuffle the training set every epoch (the ablation study turns it off)
    train_limit: int | None = None  # keep the first N training images (after the split): quick runs

    def __post_init__(self) -> None:
        _check(0.0 <= self.val_fraction < 1.0, "data.val_fraction", self.val_fraction, "in [0, 1)")
        _check(self.image_size is None or self.image_size > 0, "data.image_size", self.image_size, "> 0")
        _check(self.channels in (None, 1, 3), "data.channels", self.channels, "1, 3 or null")
        _check(self.train_limit is None or self.train_limit > 0, "data.train_limit", self.train_limit, "> 0")


@dataclass(frozen=True)
class AugmentConfig:
    """Training-time augmentation, batched on the device (data/augment.py). A field left unset (null)
    takes the dataset's standard recipe, filled in when the config is resolved, so config.yaml always
    states what ran; `augment=false` turns everything off (the seed study trains without)."""

    enabled: bool = True
    hflip: bool | None = None  # random horizontal flip, p = 1/2
    crop_padding: int | None = None  # random crop after zero padding by this many pixels per side

    def __post_init__(self) -> None:
        _check(self.crop_padding is None or self.crop_padding >= 0, "augment.crop_padding", self.crop_padding, ">= 0")


@dataclass(frozen=True)
class ModelConfig:
    name: str = "convnet"
    options: Mapping[str, Any] = field(default_factory=dict)  # the builder's keyword options, resolved


@dataclass(frozen=True)
class OptimConfig:
    name: str = "momentum"
    lr: float = 0.02  # base learning rate for the whole batch (not per image)
    weight_decay: float = 5e-4
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(self.lr > 0, "optim.lr", self.lr, "> 0")
        _check(self.weight_decay >= 0, "optim.weight_decay", self.weight_decay, ">= 0")


@dataclass(frozen=True)
class ScheduleConfig:
    name: str = "cosine"
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 64
    eval_batch_size: int = 1024
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 autocast on CUDA, fp32 elsewhere
    channels_last: bool | None = None  # None: on for CUDA and CPU (faster there), off for MPS
    compile: bool = False  # torch.compile the model (pays off for long runs of large models on a GPU)
    monitor: Literal["val_acc", "val_loss"] = "val_acc"  # what 'best' means for the best checkpoint
    restore_best: bool = False  # evaluate the test set with the best weights instead of the last
    deterministic: bool = False  # torch.use_deterministic_algorithms (slower on GPU; CPU is already)

    def __post_init__(self) -> None:
        _check(self.epochs > 0, "train.epochs", self.epochs, "> 0")
        _check(self.batch_size > 0, "train.batch_size", self.batch_size, "> 0")
        _check(self.eval_batch_size > 0, "train.eval_batch_size", self.eval_batch_size, "> 0")


@dataclass(frozen=True)
class RunConfig:
    seed: int = 0
    device: str = "auto"  # auto: cuda > mps > cpu
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def _check(ok: bool, key: str, value: Any, expected: str) -> None:
    if not ok:
        raise ConfigError(f"{key} must be {expected}, got {value!r}")
