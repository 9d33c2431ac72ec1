"""Datasets: one module per source, each registering a reader in `DATASETS`."""

from ..config.components import DatasetDefaults, register_datasets
from . import cifar, digits, folder, idx  # noqa: F401  (registration)
from .augment import AugmentPlan
from .base import Batches, DatasetInfo, FileList, ImageSet, Source, Split
from .loader import DeviceBatches, Normalizer, epoch_permutation
from .prepare import DataSpec, DataSplits, choose_image_size, load_raw, prepare
from .registry import DATASETS
from .splits import stratified_split


def _defaults(name: str, origin: str = "") -> DatasetDefaults:
    info = DATASETS.get(name, origin)
    return DatasetDefaults(dict(info.augment), tuple(info.exclude_classes))


register_datasets(_defaults)

__all__ = [
    "DATASETS", "AugmentPlan", "Batches", "DataSpec", "DataSplits", "DatasetInfo", "DeviceBatches", "FileList",
    "ImageSet", "Normalizer", "Source", "Split", "choose_image_size", "epoch_permutation", "load_raw",
    "prepare", "stratified_split",
]
