"""Datasets as a user meets them: what is there, what it looks like, whether every file is sound."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from ..config import RunConfig
from ..data import DataSpec, Normalizer
from ..errors import ConfigError
from ..train import LoaderSpec, Runtime, make_batches, splits_of
from .training import make_config


def show_samples(config: RunConfig, split: str = "train", count: int = 32, augment: bool = False,
                 out: str | Path = "samples.png") -> Path:
    """A PNG grid of `count` images of a split with their labels; with `augment`, as training sees them."""
    from ..viz.samples import plot_samples

    splits = splits_of(config)
    data = getattr(splits, split)
    if data is None:
        raise ConfigError(f"dataset '{config.data.name}' has no {split} split with this config")
    count = min(count, len(data))
    loader = LoaderSpec.for_training(config) if augment else LoaderSpec.for_evaluation(config)
    loader = replace(loader, batch_size=count)
    spec = splits.spec
    batches = make_batches(data, spec, loader, Runtime(torch.device("cpu"), None, False), splits.cache)
    images, labels = next(iter(batches.batches(0)))
    titles = [spec.classes[int(i)] for i in labels]
    what = "augmented " if augment else ""
    pixels = Normalizer(spec.mean, spec.std, torch.device("cpu")).undo(images)
    plot_samples(pixels, titles, out, title=f"{spec.dataset}: {what}{split} samples")
    return Path(out)


SAMPLES_MARKER = ".cnnlab-samples"


def export_samples(config: RunConfig, split: str = "test", count: int = 5, out: str | Path = "runs/samples"
                   ) -> list[Path]:
    """The first `count` images of a split as PNG files named <index>_<label>.png, at the size the data
    holds them: images to try `predict` on whose right answer is in the name."""
    from PIL import Image

    from ..io import atomic_write, atomic_write_text, check_output_dir

    splits = splits_of(config)
    data = getattr(splits, split)
    if data is None:
        raise ConfigError(f"dataset '{config.data.name}' has no {split} split with this config")
    out = Path(out)
    check_output_dir(out, SAMPLES_MARKER, "--out")
    for old in out.glob("[0-9][0-9][0-9]_*.png"):  # an earlier export into this folder of ours: replaced whole
        old.unlink()
    atomic_write_text(out / SAMPLES_MARKER, f"{config.data.name} {split} images by cnnlab data export-samples\n")
    paths = []
    loader = replace(LoaderSpec.for_evaluation(config), batch_size=min(count, len(data)))
    batches = make_batches(data, splits.spec, loader, Runtime(torch.device("cpu"), None, False), splits.cache)
    images, labels = next(iter(batches.batches(0)))
    pixels = Normalizer(splits.spec.mean, splits.spec.std, torch.device("cpu")).undo(images)
    for index, (image, label) in enumerate(zip(pixels, labels)):
        array = (image * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        picture = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
        name = splits.spec.classes[int(label)].replace("/", "_").replace(" ", "_")
        path = out / f"{index:03d}_{name}.png"
        atomic_write(path, functools.partial(picture.save, format="PNG"))
        paths.append(path)
    return paths


def data_config(name: str, items: Sequence[str] = ()) -> RunConfig:
    """The config of dataset `name` with `key=value` overrides (data.root=DIR, ...)."""
    return make_config(None, [f"data={name}", *items])


@dataclass
class DataInfo:
    spec: DataSpec
    sizes: dict[str, Any]  # image width/height min/median/max (folders) from image_sizes
    mean: tuple[float, ...]
    std: tuple[float, ...]
    counts: dict[str, dict[str, int]]  # class -> split -> images
    notes: list[str]
    bad_files: dict[str, str]


def data_info(name: str, items: Sequence[str] = ()) -> DataInfo:
    """Counts per split and class, image sizes, pixel mean/std of a dataset as a run would see it."""
    from ..data.inspect import class_counts, image_sizes, pixel_stats

    splits = splits_of(data_config(name, ["data.skip_bad=true", *items]))
    mean, std = pixel_stats(splits)
    return DataInfo(splits.spec, image_sizes(splits.train), mean, std, class_counts(splits), list(splits.notes),
                    dict(splits.bad_files))


@dataclass
class Verification:
    problems: dict[str, str]  # file -> what is wrong with it
    notes: list[str]
    checked: int
    classes: int
    source: str = ""
    counts: dict[str, int] | None = None  # split -> images (datasets by name)


def verify_data(target: str, items: Sequence[str] = ()) -> Verification:
    """Decode every image of a dataset (by name) or of an image folder tree; list what is bad."""
    from ..data import DATASETS, FileList, load_raw
    from ..data.inspect import verify_files, verify_tree

    if target in DATASETS:
        config = data_config(target, items)
        source = load_raw(config.data)  # the readers validate headers, sizes, labels (DataError on a problem)
        splits = {"train": source.train, "val": source.val, "test": source.test}
        bad: dict[str, str] = {}
        for split in splits.values():
            if isinstance(split, FileList):
                bad.update(verify_files(split, config.data.max_pixels))
        counts = {name: len(s) for name, s in splits.items() if s is not None}
        return Verification(bad, list(source.notes), sum(counts.values()), len(source.classes), source.source, counts)
    root = Path(target)
    if not root.is_dir():
        raise ConfigError(f"'{target}' is neither a dataset name ({', '.join(DATASETS)}) nor a folder")
    config = data_config("imagefolder", [f"data.root={root}", *items])
    report = verify_tree(root, config.data.max_pixels)
    return Verification(report.problems, list(report.notes), report.checked, report.classes, str(root))


def download_data(name: str, root: str | Path | None = None, mirror: str | None = None) -> tuple[list[Path], Path]:
    """Fetch, check and unpack a dataset into `root` (default: the first data root)."""
    from ..data.download import download_dataset
    from ..data.roots import candidate_roots

    target = Path(root).expanduser() if root else candidate_roots(None)[0]
    return download_dataset(name, target, mirror), target
