"""The GPU paths, proven or not in one command (issue 35 item 6): they stay off by default until this has run
on a GPU. On a CUDA machine:

    python benchmarks/gpu_paths.py                 # about 5 minutes on one H100

1. tests/test_gpu.py (bf16 autocast and channels_last on the tensors, bitwise resume, CUDA-graph replay);
2. real `cnnlab train` runs (convnet, all of Fashion-MNIST, batch 64 and 512, 3 epochs), the default (bf16,
   NHWC, eager) beside each path that is off or unmeasured: train.graphs=true (the CUDA-graph step),
   train.compile=true, fp32, NCHW; interleaved, --repeats each; img/s from run.json, the test accuracy of
   every run (a speed path may move no result: compare the accuracies, or run a twin study as
   studies/compile_cpu.yaml does for compile on the CPU);
3. the ratio of each path to the default, and the switch it would justify (train.graphs' default in
   config/sections.py, compile=auto's GPU rule in train/speed.py's fixed_choice).

Without a CUDA device it says so and writes its JSON with `skipped` (exit 0), so it can sit in any script.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
PATHS = {"default (bf16, NHWC, eager)": [], "train.graphs=true": ["train.graphs=true"],
         "train.compile=true": ["train.compile=true"], "fp32": ["train.precision=fp32"],
         "NCHW": ["train.channels_last=false"]}


def train(items: list[str], runs: Path, name: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "cnnlab", "train", *items, "--name", name, "--runs-dir", str(runs), "--quiet"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        return {"failed": done.stderr[-1500:]}
    record = json.loads((runs / name / "run.json").read_text())
    return {"images_per_second": record["images_per_second"], "test_acc": (record.get("test") or {}).get("acc"),
            "graphs": record.get("graphs"), "speed": record.get("speed")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", default="64,512")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--limit", type=int, default=0, help="first N training images (0: all)")
    parser.add_argument("--skip-tests", action="store_true")
    parser.add_argument("--out", default="benchmarks/results/gpu_paths.json")
    args = parser.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not torch.cuda.is_available():
        print("no CUDA device: the GPU paths stay off (nothing to measure here); run this on a machine with one")
        out.write_text(json.dumps({"skipped": "no CUDA device"}) + "\n")
        return
    report: dict[str, Any] = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "batches": {}}
    if not args.skip_tests:
        tests = subprocess.run([sys.executable, "-m", "pytest", "-q", str(ROOT / "tests" / "test_gpu.py")],
                               capture_output=True, text=True, cwd=ROOT)
        report["tests"] = {"returncode": tests.returncode, "tail": tests.stdout[-1500:]}
        print(f"tests/test_gpu.py: {'passed' if tests.returncode == 0 else 'FAILED'}")
    base = ["model=convnet", "data=fashion-mnist", "device=cuda", f"epochs={args.epochs}", "augment=false"]
    base += [f"data.train_limit={args.limit}"] if args.limit else []
    with tempfile.TemporaryDirectory(prefix="cnnlab-gpu-") as scratch:
        for batch in [int(b) for b in args.batches.split(",") if b]:
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in PATHS}
            for repeat in range(args.repeats):
                for name, items in PATHS.items():
                    runs[name].append(train([*base, f"batch_size={batch}", *items], Path(scratch),
                                            f"b{batch}_{len(runs[name])}_{abs(hash(name))}_{repeat}"))
            report["batches"][batch] = summarise(runs)
    out.write_text(json.dumps(report, indent=2) + "\n")
    show(report)
    print(f"wrote {out}")


def summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for name, found in runs.items():
        good = [run for run in found if "failed" not in run]
        rates = [run["images_per_second"] for run in good]
        rows[name] = {"images_per_second": statistics.median(rates) if rates else None, "all": rates,
                      "test_acc": [run["test_acc"] for run in good], "failed": [r["failed"] for r in found
                                                                                if "failed" in r]}
    default = rows["default (bf16, NHWC, eager)"]["images_per_second"]
    for row in rows.values():
        row["ratio_to_default"] = row["images_per_second"] / default if default and row["images_per_second"] else None
    return rows


def show(report: dict[str, Any]) -> None:
    print(f"convnet on Fashion-MNIST, {report['device']}, torch {report['torch']}")
    for batch, rows in report["batches"].items():
        print(f"batch {batch}:")
        for name, row in rows.items():
            rate = "failed" if row["images_per_second"] is None else f"{row['images_per_second']:>10,.0f} img/s"
            ratio = "" if row["ratio_to_default"] is None else f"  x{row['ratio_to_default']:.2f}"
            accs = ", ".join(f"{100 * a:.2f}%" for a in row["test_acc"] if a is not None)
            print(f"  {name:<28} {rate}{ratio}  test {accs}")


if __name__ == "__main__":
    main()
