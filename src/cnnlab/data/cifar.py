"""CIFAR-10 from the official python pickle batches (Krizhevsky 2009, https://www.cs.toronto.edu/~kriz/cifar.html).

`cifar-10-batches-py/` holds `data_batch_1..5`, `test_batch` and `batches.meta`, each a pickled dict with
`b'data'` (uint8 [10000, 3072]: 1024 red, 1024 green, 1024 blue values per image, row-major) and
`b'labels'`. Pickle can run arbitrary code, so the batches are read with a restricted unpickler that
only rebuilds numpy arrays, lists, dicts, bytes and numbers, and refuses every other global.
"""

from __future__ import annotations

import contextlib
import io
import pickle
import pickletools
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DataError
from ..io import LIMITS
from .base import ImageSet, Source
from .registry import DATASETS
from .roots import find_dir

# (module, name) pairs a CIFAR pickle may reference: numpy's array reconstruction under its old and new
# module names, and `_codecs.encode`, which protocol-2 pickles written by Python 3 use for bytes.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"): ("numpy", "ndarray"),
    ("numpy", "dtype"): ("numpy", "dtype"),
    ("_codecs", "encode"): ("_codecs", "encode"),
}


class RestrictedUnpickler(pickle.Unpickler):
    """Rebuilds plain containers and numpy arrays only; any other global raises `pickle.UnpicklingError`."""

    def find_class(self, module: str, name: str) -> Any:
        target = _ALLOWED.get((module, name))
        if target is None:
            raise pickle.UnpicklingError(f"refused to load global '{module}.{name}'")
        if target[0] == "numpy._core.multiarray" and not hasattr(np, "_core"):
            target = ("numpy.core.multiarray", target[1])  # numpy < 2
        return super().find_class(*target)


def load_pickle(path: Path) -> dict:
    """A CIFAR batch dict. The file's size is bounded (LIMITS.pickle_bytes) before it is read, and every
    length the pickle declares (strings, bytes, frames) is checked against the bytes actually there before
    the unpickler runs (pickletools walks the opcodes without building anything): a 14-byte file that
    claims a 64 GiB string is refused instead of allocating it."""
    try:
        size = path.stat().st_size
        if size > LIMITS.pickle_bytes:
            raise DataError(f"{path}: {size:,} bytes, more than the {LIMITS.pickle_bytes:,} a CIFAR batch file may "
                            "have (the largest real one has 155 MB): the file is not a CIFAR batch")
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror}). Download the dataset again.") from None
    with warnings.catch_warnings(), _unraisable_ignored():  # corrupt input is an error below, nothing else:
        warnings.simplefilter("ignore", DeprecationWarning)  # not a STRING opcode's bad-escape warning, nor
        data = _unpickle(path, raw)  # numpy's traceback while it frees a half-built array it refused
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a dict, found {type(data).__name__}")
    # a key that is not UTF-8 is no CIFAR key: kept (as replacement characters) for read_batch to refuse
    return {k.decode("utf-8", "replace") if isinstance(k, bytes) else k: v for k, v in data.items()}


@contextlib.contextmanager
def _unraisable_ignored() -> Iterator[None]:
    hook = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: None
    try:
        yield
    finally:
        sys.unraisablehook = hook


def _unpickle(path: Path, raw: bytes) -> object:
    try:
        for _ in pickletools.genops(io.BytesIO(raw)):
            pass
    except (ValueError, EOFError, TypeError, IndexError, KeyError, OverflowError) as exc:
        raise DataError(f"{path}: truncated or corrupt pickle ({exc}). Download the dataset again.") from None
    try:
        return RestrictedUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except pickle.UnpicklingError as exc:
        if str(exc).startswith("refused"):
            raise DataError(f"{path}: unsafe pickle ({exc}); cnnlab will not load it") from None
        raise DataError(f"{path}: truncated or corrupt pickle ({exc}). Download the dataset again.") from None
    except (EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError, OverflowError, MemoryError,
            RecursionError, OSError, LookupError, SystemError) as exc:
        # LookupError: a corrupt codec name in numpy's bytes; SystemError: numpy refusing a corrupt dtype state
        raise DataError(f"{path}: truncated or corrupt pickle ({type(exc).__name__}: {exc}). "
                        "Download the dataset again.") from None


def read_batch(path: Path, label_key: str, num_classes: int) -> ImageSet:
    """One batch file -> ImageSet, checking the array shape, dtype and label range."""
    batch = load_pickle(path)
    data, labels = batch.get("data"), batch.get(label_key)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        shape = getattr(data, "shape", None)
        raise DataError(f"{path}: 'data' must be a uint8 array [N, 3072], got {type(data).__name__} {shape}")
    labels = np.asarray(labels if labels is not None else [], dtype=np.int64)
    if labels.shape != (data.shape[0],):
        raise DataError(f"{path}: {data.shape[0]} images but {labels.size} '{label_key}'")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(f"{path}: labels outside [0, {num_classes})")
    images = torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())
    return ImageSet(images, torch.from_numpy(labels))


def concat(sets: list[ImageSet]) -> ImageSet:
    return ImageSet(torch.cat([s.images for s in sets]), torch.cat([s.labels for s in sets]))


def class_names(meta_path: Path, key: str, count: int) -> tuple[str, ...]:
    names = load_pickle(meta_path).get(key)
    if not isinstance(names, list) or len(names) != count:
        raise DataError(f"{meta_path}: expected {count} names under '{key}'")
    return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)


CIFAR10_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]
CIFAR10_HOW = (
    "download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz and extract it into ROOT "
    "(giving ROOT/cifar-10-batches-py/)"
)


# the standard CIFAR recipe (He et al. 2016, section 4.2): flips and 4-pixel translations
@DATASETS.register("cifar10", shape=(3, 32, 32), num_classes=10, how_to_get=CIFAR10_HOW,
                   augment={"hflip": True, "crop_padding": 4},
                   description="CIFAR-10, 50k train / 10k test, 32x32 RGB (python pickle batches)")
def load_cifar10(config, roots: list[Path]) -> Source:
    directory = find_dir(roots, ("cifar-10-batches-py", "cifar10/cifar-10-batches-py", "cifar10"),
                         CIFAR10_FILES, "cifar10", CIFAR10_HOW)
    train = concat([read_batch(directory / f"data_batch_{i}", "labels", 10) for i in range(1, 6)])
    test = read_batch(directory / "test_batch", "labels", 10)
    classes = class_names(directory / "batches.meta", "label_names", 10)
    return Source(train=train, test=test, classes=classes, source=str(directory))


CIFAR100_FILES = ["train", "test", "meta"]
CIFAR100_HOW = (
    "download https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz and extract it into ROOT (giving "
    "ROOT/cifar-100-python/)"
)


# CIFAR-100 has 100 fine classes grouped into 20 coarse superclasses; data.coarse_labels=true trains on the
# 20. Same pickle format as CIFAR-10, one 50,000-image 'train' file.
@DATASETS.register("cifar100", shape=(3, 32, 32), num_classes=100, how_to_get=CIFAR100_HOW,
                   augment={"hflip": True, "crop_padding": 4},
                   description="CIFAR-100, 50k train / 10k test, 32x32 RGB, 100 fine or 20 coarse classes")
def load_cifar100(config, roots: list[Path]) -> Source:
    directory = find_dir(roots, ("cifar-100-python", "cifar100/cifar-100-python", "cifar100"), CIFAR100_FILES,
                         "cifar100", CIFAR100_HOW)
    coarse = bool(getattr(config, "coarse_labels", False))
    key, count = ("coarse_labels", 20) if coarse else ("fine_labels", 100)
    train = read_batch(directory / "train", key, count)
    test = read_batch(directory / "test", key, count)
    classes = class_names(directory / "meta", "coarse_label_names" if coarse else "fine_label_names", count)
    return Source(train=train, test=test, classes=classes, source=str(directory))
