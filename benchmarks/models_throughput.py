"""Training throughput of cnnlab's architectures against torchvision's same models, in the same run and
the same hand-written training step (forward, cross-entropy, backward, SGD step), on synthetic 224px
batches already on the device; bf16 autocast + channels_last on CUDA, channels_last on CPU.

    python benchmarks/models_throughput.py --device cuda --batch-size 256 --steps 30
    python benchmarks/models_throughput.py                # CPU: batch 8, a few steps (a smoke-level check)
    python benchmarks/models_throughput.py --compile      # also torch.compile both sides

Pairs: alexnet_tv / alexnet, vgg16 / vgg16, resnet18 / resnet18, resnet50 / resnet50; the paper's
two-tower `alexnet` is timed too, against torchvision's single-tower AlexNet. Same architecture means the
ratio should be 1.0 within noise; the point is that cnnlab's models cost nothing extra.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision

from cnnlab.models import MODELS, build_model

PAIRS = [("alexnet_tv", "alexnet"), ("alexnet", "alexnet"), ("vgg16", "vgg16"), ("resnet18", "resnet18"),
         ("resnet50", "resnet50")]


def ours(name: str) -> torch.nn.Module:
    options = {k: v.default for k, v in MODELS.get(name).options.items()}
    return build_model(name, options, num_classes=1000, in_channels=3, image_size=224)


def images_per_second(model: torch.nn.Module, args: argparse.Namespace, device: torch.device) -> float:
    channels_last = device.type in ("cuda", "cpu")
    model = model.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
    step_model = torch.compile(model) if args.compile else model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, foreach=True)
    x = torch.randn(args.batch_size, 3, 224, 224, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (args.batch_size,), device=device)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
                else contextlib.nullcontext())

    def step() -> None:
        with autocast:
            loss = F.cross_entropy(step_model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return args.steps * args.batch_size / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--models", nargs="*", help="subset of: " + ", ".join(o for o, _ in PAIRS))
    parser.add_argument("--out", default="benchmarks/results/models_throughput.json")
    args = parser.parse_args()
    device = torch.device(args.device)
    args.batch_size = args.batch_size or (256 if device.type == "cuda" else 8)
    args.steps = args.steps or (30 if device.type == "cuda" else 3)
    if device.type == "cpu":
        args.warmup = min(args.warmup, 1)
    results = []
    print(f"training img/s at 224px, batch {args.batch_size}, {args.steps} steps, {device}"
          f"{' (bf16, channels_last)' if device.type == 'cuda' else ''}{', compiled' if args.compile else ''}")
    for name, reference in PAIRS:
        if args.models and name not in args.models:
            continue
        torch.manual_seed(0)
        theirs = images_per_second(torchvision.models.get_model(reference), args, device)
        torch.manual_seed(0)
        mine = images_per_second(ours(name), args, device)
        results.append({"cnnlab": name, "torchvision": reference, "cnnlab_img_s": mine, "torchvision_img_s": theirs,
                        "ratio": mine / theirs})
        print(f"  {name:<11} {mine:>10,.1f} img/s   torchvision {reference:<9} {theirs:>10,.1f} img/s   "
              f"ratio {mine / theirs:.2f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"device": str(device), "batch_size": args.batch_size, "steps": args.steps,
                                          "compile": args.compile, "torch": torch.__version__,
                                          "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
