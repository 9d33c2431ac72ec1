"""`cnnlab models`, `summary`, `datasets`, `optimizers`, `config`: what there is."""

from __future__ import annotations

import argparse
from typing import Any

from .. import api
from ..errors import ConfigError
from .common import add_items, command, human, split_items, table


def register(sub: Any) -> None:
    models = command(sub, "models", _models, "list the registered models with parameters and FLOPs")
    models.add_argument("pattern", nargs="?", default="*", help="shell pattern, e.g. 'resnet*'")
    summary = command(sub, "summary", _summary, "layers, output shapes, parameters and FLOPs of a model")
    summary.add_argument("model", help="a model name (`cnnlab models` lists them)")
    summary.add_argument("options", nargs="*", metavar="key=value", help="model options, e.g. batch_norm=true")
    summary.add_argument("--input", help="CxHxW, e.g. 3x32x32 (default: the model's)")
    summary.add_argument("--classes", type=int, help="number of classes (default: the model's)")
    command(sub, "datasets", _datasets, "list the datasets cnnlab can read")
    command(sub, "optimizers", _optimizers, "list the optimizers and their options")
    show = command(sub, "config", _config, "print the resolved config (defaults + file + overrides)")
    add_items(show)


def _models(args: argparse.Namespace) -> int:
    rows = [(m.name, human(m.parameters), "x".join(map(str, m.input_size)), human(m.flops), m.description)
            for m in api.models(args.pattern)]
    table(("model", "params", "input", "FLOPs", "description"), rows)
    return 0


def _summary(args: argparse.Namespace) -> int:
    input_shape = parse_shape(args.input) if args.input else None
    summary = api.summary(args.model, args.options, input_shape, args.classes)
    rows = [(r.name, r.kind, "x".join(map(str, r.output_shape)), f"{r.parameters:,}", human(r.flops))
            for r in summary.rows]
    table(("layer", "type", "output", "params", "FLOPs"), rows)
    print(f"input {'x'.join(map(str, summary.input_shape))}: {summary.parameters:,} parameters "
          f"({summary.trainable_parameters:,} trainable), {human(summary.flops)} FLOPs per image forward "
          "(1 multiply-add = 2 FLOPs)")
    return 0


def parse_shape(text: str) -> tuple[int, int, int]:
    try:
        parts = tuple(int(p) for p in text.lower().split("x"))
    except ValueError:
        parts = ()
    if len(parts) != 3 or min(parts) <= 0:
        raise ConfigError(f"--input must look like CxHxW (for example 3x32x32), got '{text}'")
    return parts  # type: ignore[return-value]


def _datasets(args: argparse.Namespace) -> int:
    rows = []
    for info in api.datasets():
        shape = "x".join(map(str, info.shape)) if info.shape[1] else f"{info.shape[0]}x*x* (files)"
        rows.append((info.name, shape, str(info.num_classes or "any"), info.description))
    table(("dataset", "shape", "classes", "description"), rows)
    return 0


def _optimizers(args: argparse.Namespace) -> int:
    rows = []
    for info in api.optimizers():
        options = ", ".join(f"{k}={v.default}" for k, v in info.options.items()) or "-"
        rows.append((info.name, f"{info.default_lr:g}", options, info.paper))
    table(("optimizer", "default lr", "options", "paper"), rows)
    return 0


def _config(args: argparse.Namespace) -> int:
    import yaml

    config, overrides = split_items(args.items)
    print(yaml.safe_dump(api.resolved_config(config, overrides), sort_keys=False), end="")
    return 0
