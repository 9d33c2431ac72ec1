"""Datasets: one module per source, each registering a reader in `DATASETS`."""

from . import cifar, digits, folder, idx  # noqa: F401  (registration)
from .augment import AugmentPlan
from .base import Batches, DatasetInfo, FileList, ImageSet, RawDataset, Source, Split
from .loader import DeviceBatches, Normalizer, epoch_permutation
from .prepare import DataSpec, DataSplits, choose_image_size, load_raw, prepare
from .registry import DATASETS
from .splits import stratified_split

__all__ = [
    "DATASETS", "AugmentPlan", "Batches", "DataSpec", "DataSplits", "DatasetInfo", "DeviceBatches", "FileList",
    "ImageSet", "Normalizer", "RawDataset", "Source", "Split", "choose_image_size", "epoch_permutation", "load_raw",
    "prepare", "stratified_split",
]
