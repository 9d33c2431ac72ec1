"""Every choice of cnnlab's CPU training step measured against its alternative in one run (issue 35): the
seed convnet's step (Fashion-MNIST's 1x32x32, batch 64) as `cnnlab train` runs it, beside the same step
with one choice changed: NCHW instead of NHWC, torch's fused SGD instead of foreach, torch.compile,
one thread instead of the default, and glibc's allocator as the process starts instead of cnnlab's.

    python benchmarks/step_choices.py                       # fp32 and bf16, 7 interleaved blocks of 20 steps
    python benchmarks/step_choices.py --precisions bf16 --no-compile --blocks 3

Each variant is the Trainer's own step (train/step.py's EagerStep) on a fixed random batch; the variants
run block by block interleaved in one process, so all see the same machine; a variant's figure is the
median of its blocks. The allocator is process-wide: its comparison runs the cnnlab variant in child
processes, CNNLAB_ALLOCATOR=system and cnnlab's alternately (--allocator-runs each), after the in-process
blocks. Every row shows its GFLOP/s (models/summary.py's training FLOPs) and its fraction of the CPU's peak
for its precision (train/cpu.py; at the clock /proc/cpuinfo reports when the machine gives no maximum).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from cnnlab.config import OptimConfig
from cnnlab.models import build_model
from cnnlab.models.summary import summarize
from cnnlab.train.build import make_optimizer
from cnnlab.train.cpu import cpu_model_name, cpu_peak
from cnnlab.train.runtime import Runtime, choose_runtime
from cnnlab.train.speed import quiet_compiler
from cnnlab.train.step import EagerStep

Step = Callable[[], Any]
SHAPE = (1, 32, 32)  # Fashion-MNIST padded to 32, as cnnlab trains it


def make_step(precision: str, batch: int, *, channels_last: bool = True, fused: bool = False,
              compiled: bool = False) -> tuple[Step, Runtime]:
    runtime = choose_runtime(torch.device("cpu"), precision, channels_last, batch)
    torch.manual_seed(0)
    model = build_model("convnet", {}, num_classes=10, in_channels=SHAPE[0], image_size=SHAPE[1])
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=layout)
    optimizer = make_optimizer(OptimConfig(), model)  # cnnlab train's default: SGD momentum 0.9, foreach
    if fused:
        optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9, weight_decay=5e-4, fused=True)
    if compiled:
        quiet_compiler()
    forward = torch.compile(model) if compiled else model
    step = EagerStep(forward, optimizer, runtime.autocast)
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(batch, *SHAPE, generator=generator).contiguous(memory_format=layout)
    labels = torch.randint(0, 10, (batch,), generator=generator)
    return (lambda: step([(images, labels)])), runtime


def variants(precision: str, batch: int, compile_too: bool) -> dict[str, tuple[Step, int]]:
    """name -> (step, threads to run it on); the first is what `cnnlab train` does."""
    base, runtime = make_step(precision, batch)
    threads = runtime.threads or torch.get_num_threads()
    found: dict[str, tuple[Step, int]] = {"cnnlab (NHWC, foreach SGD, eager)": (base, threads)}
    found["NCHW"] = (make_step(precision, batch, channels_last=False)[0], threads)
    found["fused SGD"] = (make_step(precision, batch, fused=True)[0], threads)
    if threads != 1:
        found["1 thread"] = (make_step(precision, batch)[0], 1)
    if compile_too:
        found["torch.compile"] = (make_step(precision, batch, compiled=True)[0], threads)
    return found


def time_blocks(steps: dict[str, tuple[Step, int]], blocks: int, count: int, batch: int) -> dict[str, list[float]]:
    default = torch.get_num_threads()
    warmup_seconds = {}
    for name, (step, threads) in steps.items():  # warm-up: oneDNN's primitives, the allocator, a compile
        torch.set_num_threads(threads)
        started = time.perf_counter()
        for _ in range(3):
            step()
        warmup_seconds[name] = time.perf_counter() - started
    rates: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(blocks):
        for name, (step, threads) in steps.items():
            torch.set_num_threads(threads)
            started = time.perf_counter()
            for _ in range(count):
                step()
            rates[name].append(count * batch / (time.perf_counter() - started))
    torch.set_num_threads(default)
    return rates


def allocator_child(args: argparse.Namespace) -> None:
    step, runtime = make_step(args.precision_child, args.batch_size)
    rates = time_blocks({"cnnlab": (step, runtime.threads or torch.get_num_threads())}, args.blocks, args.steps,
                        args.batch_size)["cnnlab"]
    print(json.dumps({"allocator": runtime.allocator, "rates": rates}))


def allocator_runs(args: argparse.Namespace, precision: str) -> dict[str, list[float]]:
    """cnnlab's step in child processes, glibc as it starts (CNNLAB_ALLOCATOR=system) and cnnlab's, alternately."""
    found: dict[str, list[float]] = {"allocator as cnnlab sets it": [], "allocator: glibc as it starts": []}
    for _ in range(args.allocator_runs):
        for name, system in (("allocator: glibc as it starts", True), ("allocator as cnnlab sets it", False)):
            env = {**os.environ, **({"CNNLAB_ALLOCATOR": "system"} if system else {})}
            command = [sys.executable, __file__, "--child", "--precision-child", precision, "--batch-size",
                       str(args.batch_size), "--blocks", str(args.blocks), "--steps", str(args.steps)]
            done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
            found[name].append(statistics.median(json.loads(done.stdout.strip().splitlines()[-1])["rates"]))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--blocks", type=int, default=7, help="timed blocks per variant, interleaved")
    parser.add_argument("--steps", type=int, default=20, help="steps per block")
    parser.add_argument("--allocator-runs", type=int, default=3, help="child processes per allocator side")
    parser.add_argument("--no-compile", action="store_true", help="leave torch.compile out (it compiles ~20-40 s)")
    parser.add_argument("--out", default="benchmarks/results/step_choices.json")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--precision-child", default="fp32", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        allocator_child(args)
        return
    flops = summarize(build_model("convnet", {}, num_classes=10, in_channels=1, image_size=32), SHAPE).training_flops
    peak = cpu_peak()
    load_before = os.getloadavg()
    report: dict[str, Any] = {"model": "convnet", "input": list(SHAPE), "batch_size": args.batch_size,
                              "cpu": cpu_model_name(), "cores": os.cpu_count(), "threads": torch.get_num_threads(),
                              "torch": torch.__version__, "flops_per_image": flops, "load_average_before": load_before,
                              "precisions": {}}
    for precision in [p.strip() for p in args.precisions.split(",") if p.strip()]:
        rates = time_blocks(variants(precision, args.batch_size, not args.no_compile), args.blocks, args.steps,
                            args.batch_size)
        if args.allocator_runs:
            rates.update(allocator_runs(args, precision))
        reference, clock = peak.reference(precision)
        base = statistics.median(next(iter(rates.values())))
        rows = {}
        for name, values in rates.items():
            median = statistics.median(values)
            rows[name] = {"images_per_second": median, "all": values, "ratio_to_cnnlab": median / base,
                          "gflops_per_second": median * flops / 1e9,
                          "fraction_of_peak": None if reference is None else median * flops / reference}
        report["precisions"][precision] = {"peak_gflops_per_second": None if reference is None else reference / 1e9,
                                           "peak_clock": clock, "peak": peak.describe(precision), "variants": rows}
    report["load_average_after"] = os.getloadavg()
    show(report)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


def show(report: dict[str, Any]) -> None:
    print(f"convnet training step, 1x32x32, batch {report['batch_size']}, {report['flops_per_image'] / 1e6:.2f} M "
          f"FLOPs per training image; {report['cpu']} ({report['cores']} cores, {report['threads']} threads), load "
          f"average {report['load_average_before'][0]:.1f} -> {report['load_average_after'][0]:.1f}")
    for precision, entry in report["precisions"].items():
        print(f"{precision}: {entry['peak']}")
        for name, row in entry["variants"].items():
            fraction = "" if row["fraction_of_peak"] is None else f"  {row['fraction_of_peak']:6.1%} of peak"
            print(f"  {name:<34} {row['images_per_second']:>8,.0f} img/s  {row['gflops_per_second']:6.1f} GFLOP/s"
                  f"{fraction}  x{row['ratio_to_cnnlab']:.2f}")


if __name__ == "__main__":
    main()
