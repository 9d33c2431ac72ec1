"""fp32 against bf16 autocast (and NCHW against NHWC) for one model on the CPU, in one process, timed block
by block interleaved so machine load hits every variant alike: the speed half of precision=auto's CPU
decision (train/cpu.py; the accuracy half is the verdict study studies/bf16_cpu.yaml).

    python benchmarks/precision_cpu.py                          # convnet, batch 64, training step
    python benchmarks/precision_cpu.py --mode eval --batch-size 1024

Each variant is the step `cnnlab bench` times (experiments/bench.py) on a fixed synthetic batch (the
network alone); the ratio of each is against fp32 NHWC, cnnlab's CPU default where the CPU has no native bf16.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from cnnlab.experiments.bench import BenchCase, _batches, _ours, _step, flops_per_image, runtime_of
from cnnlab.train.cpu import cpu_flags, cpu_model_name, has_native_bf16, mkldnn_bf16_supported
from cnnlab.train.speed import fixed_choice

VARIANTS = {"fp32 NCHW": ("fp32", False), "fp32 NHWC": ("fp32", True), "bf16 NHWC": ("bf16", True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="convnet")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--mode", default="train", choices=("train", "eval"))
    parser.add_argument("--steps", type=int, default=20, help="steps per timed block")
    parser.add_argument("--repeats", type=int, default=7, help="timed blocks per variant (interleaved)")
    parser.add_argument("--out", default="benchmarks/results/precision_cpu.json")
    args = parser.parse_args()

    steps, sources = {}, {}
    for name, (precision, channels_last) in VARIANTS.items():
        case = BenchCase(args.model, args.batch_size, "cpu", precision, channels_last, mode=args.mode)
        runtime = runtime_of(case)
        source, channels, size, classes = _batches(case, runtime)
        torch.manual_seed(0)
        model = _ours(case, channels, size, classes, False)
        flops = flops_per_image(model, (channels, size, size), args.mode)
        steps[name], sources[name] = _step(model, case, runtime, fixed_choice(False, runtime.device)), source()
    for name, step in steps.items():  # warm-up: oneDNN primitive creation, allocator growth
        for _ in range(5):
            step(*next(sources[name]))
    rates: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.repeats):
        for name, step in steps.items():
            started = time.perf_counter()
            for _ in range(args.steps):
                step(*next(sources[name]))
            rates[name].append(args.steps * args.batch_size / (time.perf_counter() - started))
    base = statistics.median(rates["fp32 NHWC"])
    flags = cpu_flags()
    result = {
        "model": args.model, "batch_size": args.batch_size, "mode": args.mode, "cpu": cpu_model_name(),
        "native_bf16": has_native_bf16(flags), "onednn_bf16": mkldnn_bf16_supported(),
        "threads": torch.get_num_threads(), "torch": torch.__version__, "flops_per_image": flops,
        "variants": {name: {"median_images_per_second": statistics.median(values), "all": values,
                            "ratio_to_fp32_nhwc": statistics.median(values) / base} for name, values in rates.items()},
    }
    print(f"{args.model} {args.mode}, batch {args.batch_size}, {result['cpu']}, {result['threads']} threads, native "
          f"bf16 {result['native_bf16']} (oneDNN: {result['onednn_bf16']}); median of {args.repeats} interleaved "
          f"blocks of {args.steps} steps")
    for name, entry in result["variants"].items():
        rate = entry["median_images_per_second"]
        print(f"  {name:<10} {rate:>9,.0f} img/s  {rate * flops / 1e9:>6.1f} GFLOP/s  "
              f"x{entry['ratio_to_fp32_nhwc']:.2f} of fp32 NHWC")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
