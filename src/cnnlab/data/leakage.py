"""Leakage between splits: the same picture in train and test (the test score then measures memory, not
generalisation), the same picture twice in one split, and the same picture under two labels.

Images are compared by a hash of their decoded uint8 pixels and shape (BLAKE2b, 128 bits), not of their
files: a PNG re-saved as BMP, or renamed, is still the same image. A JPEG re-compressed with other
settings has other pixels and is not found (near-duplicates need a perceptual measure; Barz & Denzler
2020, "Do we train on test data? Purging CIFAR of near-duplicates", found 3.3% of CIFAR-10's test images
to be near-duplicates of training images). Hashing in-memory images costs 10-30 us each (MNIST's 70k
in 0.6 s, CIFAR's 60k in 1.6 s on a loaded 2-core machine); image files are decoded first, which is what
`cnnlab check` pays for folder datasets.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..config import DataConfig
from .base import FileList, ImageSet, Split
from .images import MAX_PIXELS, ImageProblem, decode

ORDER = ("train", "val", "test")  # a later split's image found in an earlier one is the later one's leak
_CHUNK = 4096


def digest(pixels: np.ndarray) -> bytes:
    """The hash of one decoded image (uint8, any shape): its shape and its bytes."""
    hasher = hashlib.blake2b(digest_size=16)
    hasher.update(np.asarray(pixels.shape, dtype=np.int64).tobytes())
    hasher.update(np.ascontiguousarray(pixels, dtype=np.uint8).data)  # its buffer: no copy
    return hasher.digest()


def image_digests(split: Split, max_pixels: int = MAX_PIXELS, workers: int = 4) -> list[bytes | None]:
    """One digest per image of `split`; None for a file that does not decode (it is not compared)."""
    if isinstance(split, ImageSet):
        out: list[bytes | None] = []
        for start in range(0, len(split), _CHUNK):  # one chunk in numpy at a time (a device cache may be large)
            out += [digest(image) for image in split.images[start : start + _CHUNK].cpu().numpy()]
        return out
    with ThreadPoolExecutor(max(1, workers)) as pool:  # Pillow releases the GIL while it decodes
        return list(pool.map(lambda i: _file_digest(split.path(i), max_pixels), range(len(split))))


def _file_digest(path: Path, max_pixels: int) -> bytes | None:
    try:
        return digest(decode(path, 3, max_pixels).numpy())
    except ImageProblem:
        return None


@dataclass
class LeakReport:
    """Exact duplicates among the splits. Indices are positions in each split as the run sees it."""

    sizes: dict[str, int]
    # "test in train": (index in the later split, index of the same image in the earlier split)
    across: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    within: dict[str, list[list[int]]] = field(default_factory=dict)  # groups of equal images, two or more
    conflicts: list[list[tuple[str, int, int]]] = field(default_factory=list)  # (split, index, label) per group
    unreadable: dict[str, int] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """'test in train': test images that also occur in train; 'within train': copies beyond the first
        in train; 'label conflicts': distinct images that carry two or more labels (over all splits)."""
        counts = {name: len(pairs) for name, pairs in self.across.items()}
        counts.update({f"within {name}": sum(len(g) - 1 for g in groups) for name, groups in self.within.items()})
        counts["label conflicts"] = len(self.conflicts)
        return counts

    @property
    def found(self) -> bool:
        return any(self.counts().values())


def find_leaks(digests: Mapping[str, Sequence[bytes | None]], labels: Mapping[str, Sequence[int]]) -> LeakReport:
    """Duplicates across and within the splits and images with several labels, from each split's digests
    and labels (splits named as in ORDER; a missing or None split is left out)."""
    names = [name for name in ORDER if digests.get(name) is not None]
    report = LeakReport({name: len(digests[name]) for name in names})
    where: dict[str, dict[bytes, list[int]]] = {}
    for name in names:
        where[name] = defaultdict(list)
        for index, key in enumerate(digests[name]):
            if key is not None:
                where[name][key].append(index)
        report.unreadable[name] = sum(key is None for key in digests[name])
        report.within[name] = [group for group in where[name].values() if len(group) > 1]
    for later_at, later in enumerate(names):
        for earlier in names[:later_at]:
            report.across[f"{later} in {earlier}"] = [
                (index, where[earlier][key][0]) for index, key in enumerate(digests[later])
                if key is not None and key in where[earlier]]
    report.conflicts = _conflicts(names, where, labels)
    return report


def _conflicts(names: list[str], where: dict[str, dict[bytes, list[int]]],
               labels: Mapping[str, Sequence[int]]) -> list[list[tuple[str, int, int]]]:
    members: dict[bytes, list[tuple[str, int, int]]] = defaultdict(list)
    for name in names:
        for key, indices in where[name].items():
            members[key] += [(name, index, int(labels[name][index])) for index in indices]
    return [group for group in members.values() if len({label for _, _, label in group}) > 1]


def split_digests(splits: dict[str, Split | None], max_pixels: int = MAX_PIXELS,
                  workers: int = 4) -> dict[str, list[bytes | None]]:
    return {name: image_digests(split, max_pixels, workers) for name, split in splits.items() if split is not None}


def split_labels(splits: dict[str, Split | None]) -> dict[str, list[int]]:
    return {name: split.labels.tolist() for name, split in splits.items() if split is not None}


def drop_test_leaks(train: Split, val: Split | None, test: Split, max_pixels: int = MAX_PIXELS,
                    workers: int = 4) -> tuple[Split, str | None]:
    """`test` without the images whose pixels occur in `train` or `val` (both shape the model: val picks its
    best epoch), and a note saying how many went; (test, None) when none did."""
    seen = {key for split in (train, val) if split is not None
            for key in image_digests(split, max_pixels, workers) if key is not None}
    keys = image_digests(test, max_pixels, workers)
    keep = [index for index, key in enumerate(keys) if key is None or key not in seen]
    dropped = len(keys) - len(keep)
    if not dropped:
        return test, None
    note = (f"data.drop_test_leaks: dropped {dropped} of {len(keys)} test image(s) whose pixels occur in the "
            "training or validation split")
    return test.subset(torch.tensor(keep, dtype=torch.int64)), note


def leak_free(config: DataConfig, train: Split, val: Split | None, test: Split) -> tuple[Split, tuple[str, ...]]:
    """The test split with data.drop_test_leaks applied, and the note saying what it dropped."""
    if not config.drop_test_leaks:
        return test, ()
    test, note = drop_test_leaks(train, val, test, config.max_pixels, config.workers or 4)
    return test, (note or f"data.drop_test_leaks: none of the {len(test)} test images occurs in the training or "
                  "validation split; none left out",)


def describe(split: Split, index: int) -> str:
    """How a user finds an image: its file for a folder dataset, else its index in the split."""
    return str(split.path(index)) if isinstance(split, FileList) else str(index)
