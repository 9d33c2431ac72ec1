"""The data keys a run sets that cannot act on its dataset, said before it trains (issue 33: no key silently
without effect; `data.test_per_class=100` on Fashion-MNIST was ignored without a word). Pure: the config, and
what the dataset is (a test split of its own or not, image files or images in memory, its training size)."""

from __future__ import annotations

from ..config import DataConfig
from ..errors import ConfigError

DEFAULT = DataConfig()
FILE_KEYS = ("cache", "cache_size", "workers", "skip_bad", "max_pixels")  # decoding image files


def _changed(config: DataConfig, key: str) -> bool:
    return getattr(config, key) != getattr(DEFAULT, key)


def unused_data_keys(config: DataConfig, *, own_test: int | None, files: bool, train_size: int) -> list[str]:
    """A note per key set away from its default that has no effect here. `own_test`: the size of the
    dataset's own test split (None: the test split is carved from the training images); `files`: image files
    decoded by loader workers (an image folder), else images held in memory; `train_size`: the training
    split's size after data.train_limit (fewer images than the limit: it cut nothing)."""
    notes = []
    if own_test is not None:
        for key in ("test_fraction", "test_per_class"):
            if _changed(config, key):
                notes.append(f"data.{key}={getattr(config, key)} has no effect: {config.name} has a test split of its "
                             f"own ({own_test:,} images), the test set of every run on it; data.{key} carves one "
                             "from the training images of a dataset without (caltech101, an image folder without "
                             "test/)")
    if not files:
        for key in FILE_KEYS:
            if _changed(config, key):
                notes.append(f"data.{key}={getattr(config, key)} has no effect: {config.name} is held in memory, no "
                             "image file is decoded; it applies to image folders (imagefolder, caltech101)")
    else:
        if config.resize != DEFAULT.resize:
            notes.append(f"data.resize={config.resize} has no effect on image files: each is resized on its shorter "
                         "side and centre-cropped to data.image_size (data.resize fits in-memory images: digits, "
                         "MNIST, CIFAR)")
        if config.cache_size is not None and config.cache == "none":
            notes.append(f"data.cache_size={config.cache_size} has no effect without a cache: it sizes "
                         "data.cache=disk or device")
    if config.train_limit is not None and config.train_limit > train_size and not config.val_into_train:
        notes.append(f"data.train_limit={config.train_limit} keeps all {train_size:,} training images: it has no "
                     "effect at this size")
    return notes


def check_coarse_labels(config: DataConfig) -> None:
    if config.coarse_labels and config.name != "cifar100":
        raise ConfigError(f"data.coarse_labels=true applies to cifar100 (its 20 superclasses), not to "
                          f"{config.name}: leave it false, or choose the classes with data.classes")
