"""Datasets: one module per source, each registering a reader in `DATASETS`."""

from . import cifar, digits, idx  # noqa: F401  (registration)
from .base import DatasetInfo, ImageSet, RawDataset
from .loader import DeviceBatches, epoch_permutation
from .prepare import DataSpec, DataSplits, choose_image_size, load_raw, prepare
from .registry import DATASETS
from .splits import stratified_split

__all__ = [
    "DATASETS", "DataSpec", "DataSplits", "DatasetInfo", "DeviceBatches", "ImageSet", "RawDataset",
    "choose_image_size", "epoch_permutation", "load_raw", "prepare", "stratified_split",
]
