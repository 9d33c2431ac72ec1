"""The dataset registry (kept in its own module so every reader can import it without cycles)."""

from ..registry import Registry
from .base import DatasetInfo, make_dataset_info

DATASETS: Registry[DatasetInfo] = Registry("dataset", make_dataset_info)
