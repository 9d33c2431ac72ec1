"""`cnnlab viz filters|feature-maps|predictions|deconv|evolution`: pictures that explain a trained run."""

from __future__ import annotations

import argparse
from typing import Any

from .. import api
from ..errors import ConfigError
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
    deconv = command(viz, "deconv", _deconv, "Zeiler & Fergus's deconvnet: a layer's strongest activations "
                     "projected back to pixels, beside their image patches")
    add_run_dir(deconv)
    deconv.add_argument("--layer", help="a layer of the model's features, e.g. conv2 (default: the last conv)")
    deconv.add_argument("--top", type=int, default=9, help="strongest activations per channel (default 9)")
    deconv.add_argument("--channels", default="8", type=_channels,
                        help="how many channels (the N with the strongest activations; default 8), or a list "
                             "such as 0,5,7")
    add_split(deconv, default="val")
    add_checkpoint(deconv)
    evolution = command(viz, "evolution", _evolution, "a layer's kernels epoch by epoch, from the checkpoints "
                        "kept with train.keep_epochs=[...]")
    add_run_dir(evolution)
    evolution.add_argument("--epochs", type=_channels, help="which kept epochs, e.g. 1,2,5 (default: all kept)")
    evolution.add_argument("--layer", help="layer name (default: the first conv)")
    evolution.add_argument("--count", type=int, default=16, help="how many kernels per epoch (default 16)")


def _filters(args: argparse.Namespace) -> int:
    print(f"wrote {api.filters(args.run_dir, args.layer, args.checkpoint)[1]}")
    return 0


def _maps(args: argparse.Namespace) -> int:
    print(f"wrote {api.feature_maps(args.run_dir, args.image, args.layer, args.checkpoint)[1]}")
    return 0


def _predictions(args: argparse.Namespace) -> int:
    print(f"wrote {api.predictions(args.run_dir, args.n, args.split, args.checkpoint)[1]}")
    return 0


def _channels(text: str) -> int | list[int]:
    """'8' -> 8 (a count, at least 1); '0,5,7' -> [0, 5, 7]."""
    try:
        value = [int(part) for part in text.split(",")] if "," in text else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is neither a count nor a list like 0,5,7") from None
    if isinstance(value, int) and value < 1:
        raise argparse.ArgumentTypeError(f"a count must be at least 1, got {value}")
    return value


def _deconv(args: argparse.Namespace) -> int:
    if args.top < 1:
        raise ConfigError(f"--top must be at least 1, got {args.top}")
    _, path, result = api.deconv(args.run_dir, args.layer, args.top, args.channels, args.split, args.checkpoint)
    for channel, values in zip(result.channels, result.values):
        print(f"{result.layer} channel {channel}: strongest activation {float(values[0]):.3g}")
    print(f"wrote {path}")
    return 0


def _evolution(args: argparse.Namespace) -> int:
    if args.count < 1:
        raise ConfigError(f"--count must be at least 1, got {args.count}")
    epochs = [args.epochs] if isinstance(args.epochs, int) else args.epochs
    print(f"wrote {api.evolution(args.run_dir, epochs, args.layer, args.count)[1]}")
    return 0
