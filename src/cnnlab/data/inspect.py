"""`cnnlab data info | show | verify`: look at a dataset before training on it."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from .base import FileList, ImageSet, Split
from .folder import scan_tree
from .images import check, is_image_name
from .pixels import channel_stats
from .spec import DataSplits


def class_counts(splits: DataSplits) -> dict[str, dict[str, int]]:
    """{class: {split: count}} over train, val and test."""
    counts = {name: {"train": 0, "val": 0, "test": 0} for name in splits.spec.classes}
    for split_name in ("train", "val", "test"):
        split = getattr(splits, split_name)
        if split is not None:
            for label, count in zip(*torch.unique(split.labels, return_counts=True)):
                counts[splits.spec.classes[int(label)]][split_name] = int(count)
    return counts


def image_sizes(split: Split, limit: int = 2000) -> dict[str, Any]:
    """Width and height statistics (from file headers for folders: no decoding)."""
    if isinstance(split, ImageSet):
        height, width = split.size
        return {"width": [width] * 3, "height": [height] * 3, "count": len(split)}
    widths, heights = [], []
    for i in range(min(len(split), limit)):
        try:
            with Image.open(split.path(i)) as image:
                widths.append(image.size[0])
                heights.append(image.size[1])
        except OSError:
            continue
    summary = lambda values: [min(values), int(statistics.median(values)), max(values)] if values else [0, 0, 0]
    return {"width": summary(widths), "height": summary(heights), "count": len(widths)}


def pixel_stats(splits: DataSplits) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of the training images as the model sees them (before normalisation)."""
    if isinstance(splits.train, ImageSet):
        return channel_stats(splits.train.images)
    return splits.spec.mean, splits.spec.std


@dataclass
class VerifyReport:
    root: Path
    checked: int = 0
    problems: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    classes: int = 0


def verify_tree(root: Path, max_pixels: int) -> VerifyReport:
    """Check every image under a folder tree (class folders, or train/ val/ test/ of class folders)."""
    report = VerifyReport(root)
    tops = [root / s for s in ("train", "val", "test") if (root / s).is_dir()] or [root]
    for top in tops:
        tree, notes = scan_tree(top)
        report.notes += notes
        report.classes = max(report.classes, len(tree))
        for files in tree.values():
            for relative in files:
                path = top / relative
                report.checked += 1
                problem = check(path, max_pixels)
                if problem is not None:
                    report.problems[str(path)] = f"{problem.kind}: {problem.detail}"
    return report


def verify_files(files: FileList, max_pixels: int) -> dict[str, str]:
    from .scan import find_bad_files

    return find_bad_files([files.path(i) for i in range(len(files))], max_pixels, progress=True)


def looks_like_tree(path: Path) -> bool:
    return path.is_dir() and any(is_image_name(p) for p in path.rglob("*") if p.is_file())
