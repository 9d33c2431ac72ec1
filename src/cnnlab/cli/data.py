"""`cnnlab data info|show|verify|download`: the datasets as a user meets them."""

from __future__ import annotations

import argparse
from typing import Any

from .. import api
from ..errors import ConfigError
from .common import add_items, command, group, table


def register(sub: Any) -> None:
    data = group(sub, "data", "inspect, check and download datasets", "datasets")
    info = command(data, "info", _info, "counts per split and class, image sizes, pixel mean/std")
    info.add_argument("name", metavar="NAME", help="a dataset name (`cnnlab datasets` lists them)")
    add_items(info, config_file=False)
    show = command(data, "show", _show, "a PNG grid of samples with their labels")
    show.add_argument("name", metavar="NAME", help="a dataset name")
    add_items(show, config_file=False)
    show.add_argument("--split", choices=("train", "val", "test"), default="train", help="which split (default train)")
    show.add_argument("--augment", action="store_true", help="show training images after augmentation")
    show.add_argument("-n", type=int, default=32, help="how many images (default 32)")
    show.add_argument("--out", help="PNG path (default runs/NAME_SPLIT.png)")
    export = command(data, "export-samples", _export, "write a few images of a split as PNG files, with their "
                     "labels in the names: something to try `cnnlab predict` on")
    export.add_argument("name", metavar="NAME", help="a dataset name")
    add_items(export, config_file=False)
    export.add_argument("--split", choices=("train", "val", "test"), default="test", help="which split (default test)")
    export.add_argument("-n", type=int, default=5, help="how many images (default 5)")
    export.add_argument("--out", help="folder (default runs/samples/NAME)")
    verify = command(data, "verify", _verify, "check every image file; exit 1 if any is bad")
    verify.add_argument("target", metavar="ROOT|NAME", help="an image folder tree, or a dataset name")
    add_items(verify, config_file=False)
    download = command(data, "download", _download, "download, verify and unpack a dataset")
    download.add_argument("name", metavar="NAME", help="mnist, fashion-mnist, cifar10, cifar100 or caltech101")
    download.add_argument("--root", help="data root (default: $CNNLAB_DATA, then the user cache)")
    download.add_argument("--mirror", help="base URL to fetch the files from instead of the official ones")


def _info(args: argparse.Namespace) -> int:
    info = api.data_info(args.name, args.items)
    spec, sizes = info.spec, info.sizes
    print(f"dataset {spec.dataset} from {spec.source}")
    print(f"splits: train {spec.sizes['train']:,}  val {spec.sizes['val']:,}  test {spec.sizes['test']:,}; "
          f"{spec.num_classes} classes; model input {spec.channels}x{spec.image_size}x{spec.image_size}")
    if spec.native_size:
        print(f"images: {spec.native_size}x{spec.native_size} ({spec.resize} to {spec.image_size}x{spec.image_size})")
    else:
        print(f"image sizes (train, min/median/max): width {sizes['width']}, height {sizes['height']}")
    print(f"pixel mean (train, [0,1] units): {[round(m, 4) for m in info.mean]}  "
          f"std: {[round(v, 4) for v in info.std]}")
    table(("class", "train", "val", "test"), [(name, *map(str, c.values())) for name, c in info.counts.items()])
    for note in info.notes:
        print(f"note: {note}")
    if info.bad_files:
        print(f"note: {len(info.bad_files)} file(s) do not decode and are left out; `cnnlab data verify` lists them")
    return 0


def _show(args: argparse.Namespace) -> int:
    out = args.out or f"runs/{args.name}_{args.split}{'_augmented' if args.augment else ''}.png"
    path = api.show_samples(api.data_config(args.name, args.items), args.split, args.n, args.augment, out)
    print(f"wrote {path}")
    return 0


def _export(args: argparse.Namespace) -> int:
    if args.n < 1:
        raise ConfigError(f"-n must be at least 1, got {args.n}")
    paths = api.export_samples(api.data_config(args.name, args.items), args.split, args.n,
                               args.out or f"runs/samples/{args.name}")
    for path in paths:
        print(path)
    return 0


def _verify(args: argparse.Namespace) -> int:
    result = api.verify_data(args.target, args.items)
    for path, problem in sorted(result.problems.items()):
        print(f"BAD  {path}: {problem}")
    for note in result.notes:
        print(f"note: {note}")
    if result.counts is not None:  # a dataset by name
        counts = ", ".join(f"{name} {n:,}" for name, n in result.counts.items())
        print(f"{args.target} from {result.source}: {counts}; {result.classes} classes; "
              f"{len(result.problems)} bad files")
    else:
        print(f"checked {result.checked:,} images in {result.classes} classes: {len(result.problems)} bad")
    return 1 if result.problems else 0


def _download(args: argparse.Namespace) -> int:
    paths, root = api.download_data(args.name, args.root, args.mirror)
    for path in paths:
        print(f"ok   {path}")
    print(f"{args.name} is in {root}")
    return 0
