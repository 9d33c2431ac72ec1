"""Folder datasets: any `root/<class>/<image>` tree (`imagefolder`, also the ImageNet/ILSVRC layout once
its validation images sit in class folders) and Caltech-101 (`101_ObjectCategories/<class>/*.jpg`).

Class names are the sorted folder names; the mapping is saved with the run (run.json, split.json).
Hidden files and folders (names starting with '.'), files that are not images by their suffix, and empty
class folders are ignored, each with a note; whether the images themselves decode is checked before the
first training step (data/scan.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from ..errors import ConfigError, DataError
from .base import FileList, Source
from .images import is_image_name
from .registry import DATASETS
from .roots import find_dir

SPLIT_FOLDERS = ("train", "val", "test")


def scan_tree(root: Path) -> tuple[dict[str, list[str]], list[str]]:
    """{class: sorted image paths relative to `root`} and notes on what was ignored. Links are followed only
    when they lead to a place inside `root` (a tree may link within itself); a link leading out of the tree,
    or nowhere, is ignored and named, so a dataset never reads files from elsewhere behind the user's back.
    Linked sub-folders are not descended into (a link loop cannot trap the scan), and a class folder that is
    a link back to the tree itself (`loop -> .`) or to another class folder is ignored and named: it would
    be a class made of the other classes' images."""
    classes: dict[str, list[str]] = {}
    hidden = 0
    others: list[str] = []
    empty: list[str] = []
    loose: list[str] = []
    outside: list[str] = []
    loops: list[str] = []
    resolved_root = root.resolve()
    entries = sorted(root.iterdir())
    real_folders = {entry.resolve() for entry in entries if entry.is_dir() and not entry.is_symlink()}
    for entry in entries:
        if entry.name.startswith("."):
            hidden += 1
            continue
        if not _inside(entry, resolved_root):
            outside.append(_link_note(entry, root))
            continue
        if not entry.is_dir():
            loose.append(entry.name)
            continue
        if entry.is_symlink() and (resolved_root.is_relative_to(entry.resolve()) or entry.resolve() in real_folders):
            loops.append(_link_note(entry, root))
            continue
        files: list[str] = []
        for path in sorted(entry.rglob("*")):
            relative = path.relative_to(root)
            if any(part.startswith(".") for part in relative.parts):
                hidden += path.is_file()
            elif path.is_symlink() and not _inside(path, resolved_root):
                outside.append(_link_note(path, root))
            elif path.is_file():
                (files if is_image_name(path) else others).append(relative.as_posix())
        if files:
            classes[entry.name] = files
        else:
            empty.append(entry.name)
    return classes, _notes(root, hidden, others, empty, loose, outside, loops)


def _inside(path: Path, resolved_root: Path) -> bool:
    """A plain entry, or a link whose target exists inside the tree."""
    if not path.is_symlink():
        return True
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError):  # dangling, or a loop
        return False
    return target == resolved_root or target.is_relative_to(resolved_root)


def _link_note(path: Path, root: Path) -> str:
    try:
        target = str(path.resolve(strict=True))
    except (OSError, RuntimeError):
        target = "nothing (a broken link or a loop)"
    return f"{path.relative_to(root).as_posix()} -> {target}"


def _notes(root: Path, hidden: int, others: list[str], empty: list[str], loose: list[str],
           outside: Sequence[str] = (), loops: Sequence[str] = ()) -> list[str]:
    notes = []
    if hidden:
        notes.append(f"{root}: ignored {hidden} hidden file(s)")
    if others:
        notes.append(f"{root}: ignored {len(others)} non-image file(s), e.g. {', '.join(others[:3])}")
    if empty:
        notes.append(f"{root}: ignored {len(empty)} class folder(s) without images: {', '.join(empty[:5])}")
    if loose:
        notes.append(f"{root}: ignored {len(loose)} file(s) outside class folders, e.g. {', '.join(loose[:3])}")
    if outside:
        notes.append(f"{root}: ignored {len(outside)} link(s) leading out of the tree or nowhere: "
                     f"{'; '.join(outside[:5])} (copy or mount those files inside the tree to use them)")
    if loops:
        notes.append(f"{root}: ignored {len(loops)} class folder link(s) leading back to the tree or to another "
                     f"class folder (a class of images that already have a class): {'; '.join(loops[:5])}")
    return notes


def to_file_list(root: Path, tree: dict[str, list[str]], classes: tuple[str, ...]) -> FileList:
    index = {name: i for i, name in enumerate(classes)}
    unknown = sorted(set(tree) - set(index))
    if unknown:
        raise DataError(f"{root}: class folder(s) {', '.join(unknown)} do not exist in the training folder")
    paths = [p for name in tree for p in tree[name]]
    labels = [index[name] for name in tree for _ in tree[name]]
    return FileList(root, tuple(paths), torch.tensor(labels, dtype=torch.int64))


def read_tree(root: Path) -> Source:
    """A single tree (test carved later) or a tree with train/ [val/] [test/] folders."""
    if not root.is_dir():
        raise DataError(f"image folder '{root}' does not exist")
    if (root / "train").is_dir():
        return _read_split_tree(root)
    tree, notes = scan_tree(root)
    if not tree:
        raise DataError(f"{root}: no class folders with images (expected {root}/<class>/<image>)")
    classes = tuple(sorted(tree))
    return Source(to_file_list(root, tree, classes), None, classes, str(root), notes=tuple(notes))


def _read_split_tree(root: Path) -> Source:
    trees, notes = {}, []
    for split in SPLIT_FOLDERS:
        if (root / split).is_dir():
            trees[split], split_notes = scan_tree(root / split)
            notes += split_notes
    if not trees["train"]:
        raise DataError(f"{root / 'train'}: no class folders with images")
    classes = tuple(sorted(trees["train"]))
    lists = {split: to_file_list(root / split, tree, classes) for split, tree in trees.items() if tree}
    test, val = lists.get("test"), lists.get("val")
    if test is None and val is not None:
        test, val = val, None
        notes.append(f"{root}: no test/ folder, so val/ is the test set; validation is carved from train/")
    return Source(lists["train"], test, classes, str(root), val=val, notes=tuple(notes))


IMAGEFOLDER_HOW = "arrange images as ROOT/<class>/<image> (or ROOT/train/<class>/..., ROOT/val/..., ROOT/test/...)"


@DATASETS.register("imagefolder", shape=(3, 0, 0), num_classes=0, how_to_get=IMAGEFOLDER_HOW, streamed=True,
                   augment={"hflip": True, "scale": (0.25, 1.0)},
                   description="any ROOT/<class>/<image> tree, optional train/ val/ test/ (ImageNet layout)")
def load_imagefolder(config, roots: list[Path]) -> Source:
    if not config.root:
        raise ConfigError("data=imagefolder needs the tree's location: data.root=PATH or --data-root PATH")
    return read_tree(Path(config.root).expanduser())


CALTECH_HOW = (
    "download https://data.caltech.edu/records/mzrjq-6wc02/files/caltech-101.zip, giving "
    "ROOT/caltech101/101_ObjectCategories/<class>/*.jpg"
)


@DATASETS.register("caltech101", shape=(3, 0, 0), num_classes=101, how_to_get=CALTECH_HOW, streamed=True,
                   exclude_classes=("BACKGROUND_Google",), augment={"hflip": True, "scale": (0.25, 1.0)},
                   description="Caltech-101: 101 object classes, ~8.7k JPEGs of ~300x200 (BACKGROUND_Google excluded)")
def load_caltech101(config, roots: list[Path]) -> Source:
    directory = find_dir(roots, ("caltech101/101_ObjectCategories", "caltech-101/101_ObjectCategories",
                                 "101_ObjectCategories"), (), "caltech101", CALTECH_HOW,
                         is_complete=lambda d: d.is_dir() and any(d.iterdir()))
    return read_tree(directory)
