"""`cnnlab viz filters|feature-maps|predictions`: pictures that explain a trained run."""

from __future__ import annotations

import argparse
from typing import Any

from .. import api
from .common import add_checkpoint, add_run_dir, add_split, command, group


def register(sub: Any) -> None:
    viz = group(sub, "viz", "pictures that explain a trained run", "explain a run")
    filters = command(viz, "filters", _filters, "the kernels of a convolution as an image grid")
    add_run_dir(filters)
    filters.add_argument("--layer", help="layer name, e.g. conv1 or features.conv2 (default: the first conv)")
    add_checkpoint(filters)
    maps = command(viz, "feature-maps", _maps, "the feature maps of a layer for one image", aliases=["features"])
    add_run_dir(maps)
    maps.add_argument("image", metavar="IMAGE", help="an image file")
    maps.add_argument("--layer", help="layer name (default: the first conv)")
    add_checkpoint(maps)
    predictions = command(viz, "predictions", _predictions, "test images with top-5 probability bars")
    add_run_dir(predictions)
    predictions.add_argument("--n", type=int, default=8, help="how many images (default 8)")
    add_split(predictions)
    add_checkpoint(predictions)


def _filters(args: argparse.Namespace) -> int:
    print(f"wrote {api.filters(args.run_dir, args.layer, args.checkpoint)[1]}")
    return 0


def _maps(args: argparse.Namespace) -> int:
    print(f"wrote {api.feature_maps(args.run_dir, args.image, args.layer, args.checkpoint)[1]}")
    return 0


def _predictions(args: argparse.Namespace) -> int:
    print(f"wrote {api.predictions(args.run_dir, args.n, args.split, args.checkpoint)[1]}")
    return 0
