"""Seeded, stratified splits and class selection. Every function here is a pure function of its inputs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import DataConfig
from ..errors import ConfigError, DataError
from .base import FileList, ImageSet, Source, Split


def stratified_split(labels: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (keep, held_out) with round(fraction * n_c) of each class c held out, at least one when
    fraction > 0 and the class has two or more images. Both index lists are sorted, so the held-out part
    keeps the source order."""
    labels_np = labels.cpu().numpy()
    rng = np.random.default_rng(seed)
    held: list[np.ndarray] = []
    for cls in np.unique(labels_np):
        members = np.flatnonzero(labels_np == cls)
        count = int(round(fraction * len(members)))
        if fraction > 0 and count == 0 and len(members) > 1:
            count = 1
        held.append(rng.permutation(members)[:count])
    return _partition(len(labels_np), held)


def per_class_split(labels: torch.Tensor, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (rest, picked) with `count` images of each class picked at random (all of a smaller class)."""
    labels_np = labels.cpu().numpy()
    rng = np.random.default_rng(seed)
    picked = [rng.permutation(np.flatnonzero(labels_np == cls))[:count] for cls in np.unique(labels_np)]
    return _partition(len(labels_np), picked)


def carve(labels: torch.Tensor, fraction: float, per_class: int | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(keep, held): `per_class` images of each class when given, else a stratified `fraction`."""
    if per_class is not None:
        return per_class_split(labels, per_class, seed)
    return stratified_split(labels, fraction, seed)


def _partition(total: int, held: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    held_out = np.sort(np.concatenate(held)) if held else np.empty(0, dtype=np.int64)
    mask = np.ones(total, dtype=bool)
    mask[held_out] = False
    return torch.from_numpy(np.flatnonzero(mask)), torch.from_numpy(held_out.astype(np.int64))


def class_selection(classes: tuple[str, ...], include: tuple[str, ...] | None,
                    exclude: tuple[str, ...] | None, may_be_absent: tuple[str, ...] = ()) -> list[int]:
    """Indices of the classes to keep, in their original order. `include` and `exclude` entries are names or
    indices; one that names no class is refused (it would leave the run as it was, silently), except the
    names of `may_be_absent` (the dataset's own default exclusions, which a copy may lack)."""
    index = {name: i for i, name in enumerate(classes)}
    if include is None:
        kept = list(range(len(classes)))
    else:
        kept = sorted({_class_index(item, index, len(classes)) for item in include})
    excluded = {_class_index(item, index, len(classes), "data.exclude_classes") for item in exclude or ()
                if item not in may_be_absent or item in index}
    kept = [i for i in kept if i not in excluded]
    if not kept:
        raise ConfigError("data.classes and data.exclude_classes leave no class to train on")
    return kept


def _class_index(item: str, index: dict[str, int], count: int, key: str = "data.classes") -> int:
    if item in index:
        return index[item]
    if str(item).isdigit() and int(item) < count:
        return int(item)
    from ..errors import closest

    guess = closest(str(item), index)
    hint = f"; did you mean '{guess}'?" if guess else ""
    raise ConfigError(f"{key}: no class '{item}'{hint} Classes: {', '.join(index)}")


def remap_labels(labels: torch.Tensor, kept: list[int], num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(mask of samples whose class is kept, their labels renumbered 0..len(kept)-1)."""
    table = torch.full((num_classes,), -1, dtype=torch.int64)
    table[torch.tensor(kept, dtype=torch.int64)] = torch.arange(len(kept))
    new = table[labels]
    return new >= 0, new


def split_source(source: Source, config: DataConfig) -> tuple[Split, Split | None, Split]:
    """(train, val, test): the test split carved first when the source has none, then validation."""
    train, test, val = source.train, source.test, source.val
    seed = config.split_seed
    if test is None:
        keep, held = carve(train.labels, config.test_fraction, config.test_per_class, seed)
        if len(held) == 0:
            raise ConfigError(f"dataset '{config.name}' has no test split: set data.test_fraction or test_per_class")
        train, test = train.subset(keep), train.subset(held)
    if val is None and (config.val_fraction > 0 or config.val_per_class):
        keep, held = carve(train.labels, config.val_fraction, config.val_per_class, seed + 1)
        train, val = train.subset(keep), train.subset(held)
    if config.train_per_class:
        _, picked = per_class_split(train.labels, config.train_per_class, seed + 2)
        train = train.subset(picked)
    if config.train_limit:
        train = train.subset(torch.arange(min(config.train_limit, len(train))))
    if config.val_into_train and val is not None:
        train, val = merge(train, val), None
    return train, val, test


def merge(first: Split, second: Split) -> Split:
    """Two splits of one source as one (train + validation)."""
    if isinstance(first, ImageSet):
        return ImageSet(torch.cat([first.images, second.images]), torch.cat([first.labels, second.labels]))
    if first.base != second.base:  # a tree's train/ and val/ folders: paths relative to their common root
        root = Path(os.path.commonpath([first.base, second.base]))
        first, second = rebase(first, root), rebase(second, root)
    return FileList(first.base, first.paths + second.paths, torch.cat([first.labels, second.labels]))


def rebase(files: FileList, root: Path) -> FileList:
    prefix = files.base.relative_to(root)
    return FileList(root, tuple((prefix / p).as_posix() for p in files.paths), files.labels)


def read_split_file(path: str | Path) -> dict[str, Any]:
    try:
        record = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"data.split_file '{path}' does not exist") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"data.split_file '{path}' is not a cnnlab split.json ({exc})") from None
    if not isinstance(record, dict) or not {"classes", "train", "test"} <= set(record):
        raise DataError(f"data.split_file '{path}' lacks 'classes', 'train' or 'test'")
    return record
