"""`cnnlab ensemble` and `cnnlab features`: several trained networks combined, or one used as a fixed
feature extractor."""

from __future__ import annotations

import argparse
from typing import Any

from .. import api
from ..errors import ConfigError
from .common import add_device, add_items, command, split_items, table


def register(sub: Any) -> None:
    ensemble = command(sub, "ensemble", _ensemble, "average the predictions of several runs on one split")
    ensemble.add_argument("runs", nargs="+", metavar="RUN_DIR", help="two or more run directories")
    ensemble.add_argument("--split", default="test", choices=("test", "val"), help="which split (default test)")
    ensemble.add_argument("--combine", default="softmax", choices=("softmax", "logits", "vote"),
                          help="average probabilities (default), average logits, or majority vote")
    ensemble.add_argument("--tta", choices=("none", "flip", "center", "10crop"), default="none",
                          help="test-time augmentation of every member: mirrored images, the centre crop, or "
                               "AlexNet's ten crops (default none)")
    ensemble.add_argument("--flip", action="store_true", help="the same as --tta flip")
    add_device(ensemble)
    ensemble.add_argument("--out", help="write the result as JSON here")
    features = command(sub, "features", _features,
                       "a trained net as fixed feature extractor: export penultimate vectors, fit logistic regression")
    add_items(features, help_text="the data to extract from (a config file and/or key=value overrides)")
    features.add_argument("--weights", required=True, metavar="RUN_DIR|FILE", help="the network's weights")
    features.add_argument("--out", required=True, metavar="DIR", help="where features_<split>.npz go")
    features.add_argument("--no-probe", action="store_true", help="only export, no logistic regression")


def _ensemble(args: argparse.Namespace) -> int:
    if args.flip and args.tta not in ("none", "flip"):
        raise ConfigError(f"--flip and --tta {args.tta} ask for two different test-time views; give one")
    if args.flip:
        args.tta = "flip"
    result = api.ensemble(args.runs, args.split, args.combine, args.tta, args.device, args.out)
    rows = [[m["run"], f"{100 * m['acc']:.2f}%", f"{100 * m['top5']:.2f}%"] for m in result.members]
    name = f"ensemble ({args.combine}{'' if args.tta == 'none' else ', ' + args.tta})"
    rows.append([name, f"{100 * result.ensemble['acc']:.2f}%", f"{100 * result.ensemble['top5']:.2f}%"])
    table(["member", f"{args.split} top-1", "top-5"], rows)
    if args.out:
        print(f"wrote {args.out}")
    return 0


def _features(args: argparse.Namespace) -> int:
    config, overrides = split_items(args.items)
    paths, probe = api.features(config, overrides, args.weights, args.out, probe=not args.no_probe)
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    if probe is not None:
        accs = "  ".join(f"{name} {100 * acc:.2f}%" for name, acc in probe.accuracy.items())
        print(f"logistic regression on {probe.dimensions}-d features (C={probe.c:g}): {accs}")
    return 0
