"""`cnnlab models`, `summary`, `datasets`, `optimizers`, `config`: what there is; `bench`: how fast."""

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
    bench = command(sub, "bench", _bench, "images per second of a training (or eval, or loading) step, "
                    "warm-up excluded, with the spread over repeats")
    bench.add_argument("model", nargs="?", default="convnet", help="a model name (default convnet)")
    bench.add_argument("--batch-size", type=int, default=64, help="images per step (default 64)")
    bench.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    bench.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                       help="fp32, bf16 autocast, or auto: what `cnnlab train` chooses (bf16 on CUDA and on CPUs "
                            "with native bf16)")
    bench.add_argument("--memory-format", default="auto", choices=("auto", "nchw", "nhwc"),
                       help="auto (NHWC on CUDA and CPU), nchw or nhwc (channels_last)")
    bench.add_argument("--data", default="synthetic",
                       help="synthetic (a fixed batch on the device), or a dataset name: its training split "
                            "through cnnlab's loader")
    bench.add_argument("--mode", default="train", choices=("train", "eval", "loader"),
                       help="train step (default), eval forward, or the loader alone")
    bench.add_argument("--image-size", type=int, help="synthetic input side (default: the model's)")
    bench.add_argument("--compile", nargs="?", const="true", default="auto", choices=("auto", "true", "false"),
                       help="torch.compile the model (--compile alone: true); auto decides as train.compile=auto "
                            "does (measured, on the CPU only)")
    bench.add_argument("--steps", type=int, default=20, help="steps per timed repeat (default 20)")
    bench.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
    bench.add_argument("--repeats", type=int, default=5, help="timed repeats (default 5)")
    bench.add_argument("--compare", choices=("torchvision",),
                       help="also time torchvision's model of the same architecture, interleaved")
    bench.add_argument("--out", help="JSON file (default runs/bench/MODEL_MODE_DATA_bBATCH.json)")


def _bench(args: argparse.Namespace) -> int:
    layout = {"auto": None, "nchw": False, "nhwc": True}[args.memory_format]
    compiled = {"true": True, "false": False}.get(args.compile, "auto")
    rows, path = api.bench(args.model, args.batch_size, device=args.device, precision=args.precision,
                           channels_last=layout, data=args.data, mode=args.mode, image_size=args.image_size,
                           compile=compiled, steps=args.steps, warmup=args.warmup, repeats=args.repeats,
                           compare=args.compare, out=args.out)
    first = rows[0]
    print(f"{first['model']} {first['mode']}, batch {first['batch_size']}, {first['data']} data, "
          f"{first['precision']}, {'NHWC' if first['channels_last'] else 'NCHW'}, {first['device_name']}; "
          f"{first['repeats']} x {first['steps']} steps after {first['warmup']} warm-up")
    table(("implementation", "img/s", "± std", "min", "max", "GFLOP/s", "ratio"),
          [(r["implementation"], f"{r['images_per_second']:,.0f}", f"{r['std']:,.0f}", f"{r['min']:,.0f}",
            f"{r['max']:,.0f}", f"{r['gflops_per_second']:,.1f}" if "gflops_per_second" in r else "",
            f"{r['ratio']:.3f}" if "ratio" in r else "") for r in rows])
    if "flops_per_image" in first:
        per = ("training image (forward + backward, no gradient of the images)" if first["mode"] == "train"
               else "image (forward)")
        line = f"{human(first['flops_per_image'])} FLOPs per {per}"
        if "peak" in first:
            line += f"; CPU {first['peak']}"
        if first.get("fraction_of_peak") is not None:
            clock = "" if first.get("peak_clock") == "max" else " at the reported clock"
            line += f"; achieved {first['fraction_of_peak']:.1%} of the {first['precision']} peak{clock}"
        print(line)
    speed = first["speed"]
    print(f"as cnnlab train computes: {speed['threads']} thread(s), allocator {speed['allocator']}; compile: "
          f"{speed['compile']['why']}")
    print(f"wrote {path}")
    return 0


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
    return parts[0], parts[1], parts[2]


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
