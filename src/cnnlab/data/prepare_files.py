"""Preparing a folder dataset: splits (or a saved split.json), every file checked or decoded into the
cache before the first step, bad files refused (naming them) or skipped, normalisation statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..config import DataConfig
from ..errors import DataError
from .base import FileList, ImageSet, Source, Split
from .cache import DecodedCache, decode_square, ensure_cache
from .images import ImageProblem
from .leakage import leak_free
from .pixels import channel_stats, colour_pca, normalization
from .scan import find_bad_files
from .spec import DataSpec, DataSplits
from .splits import read_split_file, split_source
from .transforms import eval_resize
from .unused import unused_data_keys

STATS_SAMPLE = 512  # images decoded for mean/std when there is no cache


def prepare_files(config: DataConfig, source: Source, image_size: int, lighting: bool = False) -> DataSplits:
    if config.split_file:
        train, val, test = splits_from_record(read_split_file(config.split_file), source)
    else:
        train, val, test = split_source(source, config)
    test, dropped = leak_free(config, train, val, test)
    own_test = None if source.test is None or config.split_file else len(source.test)
    dropped += tuple(unused_data_keys(config, own_test=own_test, files=config.cache != "device",
                                      train_size=len(train)))
    channels = config.channels or 3
    paths = _unique_paths([s for s in (train, val, test) if s is not None])
    cache = None
    if config.cache != "none":
        size = config.cache_size or eval_resize(image_size)
        cache, bad = ensure_cache(paths, size, channels, config.max_pixels, config.workers)
    else:
        bad = find_bad_files(paths, config.max_pixels, config.workers, progress=True)
    if bad and not config.skip_bad:
        raise DataError(bad_files_message(bad, len(paths)))
    if bad:
        train, test = train.without(bad), test.without(bad)
        val = None if val is None else val.without(bad)
    record = split_record(config, source, {"train": train, "val": val, "test": test})
    mean, std, pca_std, pca_vectors = _statistics(config, train, cache, channels, image_size, lighting)
    sizes = {"train": len(train), "val": len(val) if val is not None else 0, "test": len(test)}
    spec = DataSpec(config.name, source.classes, channels, image_size, mean, std, sizes, source.source,
                    eval_resize=cache.size if cache is not None else eval_resize(image_size), pca_std=pca_std,
                    pca_vectors=pca_vectors)
    if config.cache == "device":  # decoded once: from here on the in-memory path, augmented on the device
        train, test = (ImageSet(cache.images(s), s.labels) for s in (train, test))
        val = None if val is None else ImageSet(cache.images(val), val.labels)
        cache = None
    return DataSplits(train, val, test, spec, cache=cache, bad_files=bad, notes=source.notes + dropped,
                      split_record=record)


def bad_files_message(bad: dict[str, str], total: int) -> str:
    lines = [f"  {path}: {problem}" for path, problem in sorted(bad.items())[:20]]
    more = [f"  ... and {len(bad) - 20} more"] if len(bad) > 20 else []
    return "\n".join([f"{len(bad)} of {total:,} images cannot be used:", *lines, *more,
                      "Fix or remove them, or pass --skip-bad (data.skip_bad=true) to train without them "
                      "(they are then listed in run.json)."])


def _unique_paths(splits: list[FileList]) -> list[Path]:
    seen: dict[str, Path] = {}
    for files in splits:
        for i in range(len(files)):
            path = files.path(i)
            seen.setdefault(str(path), path)
    return list(seen.values())


def split_record(config: DataConfig, source: Source, splits: dict[str, FileList | None]) -> dict:
    root = Path(source.source)
    record = {"dataset": config.name, "root": str(root), "classes": list(source.classes)}
    for name, files in splits.items():
        record[name] = [] if files is None else [_relative(files.path(i), root) for i in range(len(files))]
    return record


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def splits_from_record(record: dict, source: Source) -> tuple[FileList, FileList | None, FileList]:
    """The train/val/test file lists a split.json names, looked up in the dataset as it is now."""
    if list(record["classes"]) != list(source.classes):
        raise DataError("data.split_file was made for other classes than the dataset has now "
                        f"({len(record['classes'])} there, {len(source.classes)} here)")
    root = Path(source.source)
    known: dict[str, tuple[Path, int]] = {}
    for files in (source.train, source.val, source.test):
        if files is not None:
            for i in range(len(files)):
                known[_relative(files.path(i), root)] = (files.path(i), int(files.labels[i]))
    lists = {}
    for name in ("train", "val", "test"):
        entries = record.get(name) or []
        missing = [e for e in entries if e not in known]
        if missing:
            raise DataError(f"data.split_file lists {len(missing)} {name} file(s) that are not in {root}, "
                            f"e.g. {missing[0]}")
        paths = tuple(str(known[e][0]) for e in entries)
        labels = torch.tensor([known[e][1] for e in entries], dtype=torch.int64)
        lists[name] = FileList(Path("/"), paths, labels) if entries else None
    return lists["train"], lists["val"], lists["test"]


def _statistics(config: DataConfig, train: Split, cache: DecodedCache | None, channels: int, image_size: int,
                lighting: bool) -> tuple[tuple[float, ...], tuple[float, ...], tuple, tuple]:
    """(mean, std) for the normalisation and, with `lighting`, the colour PCA: over every cached training
    image, else over a seeded sample of STATS_SAMPLE decoded ones."""
    if config.normalize != "standard" and not lighting:
        return (*normalization(config.normalize, torch.zeros(1, channels, 1, 1, dtype=torch.uint8)), (), ())
    if cache is not None:  # exact, over every cached training image
        rows = np.sort(cache.row_indices(train))
        images = _RowView(cache.array, rows)
    else:
        images = _sample(config, train, channels, image_size)
    mean, std = channel_stats(images) if config.normalize == "standard" else \
        normalization(config.normalize, torch.zeros(1, channels, 1, 1, dtype=torch.uint8))
    pca = colour_pca(images) if lighting else ((), ())
    return (mean, std, *pca)


def _sample(config: DataConfig, train: Split, channels: int, image_size: int) -> torch.Tensor:
    generator = np.random.default_rng(config.split_seed)
    picked = generator.permutation(len(train))[:STATS_SAMPLE]
    images = []
    for i in picked.tolist():
        try:
            images.append(decode_square(train.path(i), image_size, channels, config.max_pixels))
        except ImageProblem:
            continue
    if not images:
        raise DataError(f"no training image of '{config.name}' could be decoded")
    return torch.stack(images)


class _RowView:
    """Rows of a memory-mapped array, sliced like a tensor by channel_stats (one chunk in memory at a time)."""

    def __init__(self, array: np.ndarray, rows: np.ndarray) -> None:
        self.array, self.rows = array, rows
        self.shape = (len(rows), *array.shape[1:])

    def __getitem__(self, item: slice) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self.array[self.rows[item]]))
