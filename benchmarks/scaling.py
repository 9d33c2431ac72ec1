"""How cost grows (issue 35): img/s of cnnlab's training step against batch size, network width, image size,
dataset size (in memory, then streamed from a folder, with peak RSS) and `study run --jobs 1/2`, each point
with its fraction of the CPU's peak for its precision, so a study's cost can be predicted before it runs
(`cnnlab study run FILE --dry-run` measures the same step for the study's own configurations).

    python benchmarks/scaling.py                              # every section (about 20 minutes on 2 cores)
    python benchmarks/scaling.py --sections batch,width --repeats 3

batch, width, image: `cnnlab bench`'s measurement (experiments/bench.py: the Trainer's step, the runtime
`cnnlab train` chooses, warm-up excluded, the median of interleaved timed blocks), on random images.
data: real `cnnlab train` processes, one epoch each, on Fashion-MNIST's images tiled into IDX files of N
images (held in memory as uint8: 784 bytes an image), then on a folder of N PNG files (decoded by loader
workers every epoch); img/s from run.json, peak RSS from the process's rusage. jobs: one study of four runs
(convnet, 10,000 Fashion-MNIST images, 2 epochs) run with --jobs 1 and with --jobs 2: its wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnlab.experiments.bench import BenchCase, run_bench
from cnnlab.train.cpu import cpu_model_name, cpu_peak

SECTIONS = ("batch", "width", "image", "data", "jobs")
CNNLAB = [sys.executable, "-m", "cnnlab"]


def bench_point(case: BenchCase, repeats: int, steps: int) -> dict[str, Any]:
    row = run_bench(case, steps=steps, warmup=2, repeats=repeats)[0]
    return {key: row.get(key) for key in ("images_per_second", "min", "max", "gflops_per_second",
                                          "fraction_of_peak", "precision", "flops_per_image")} | {
        "threads": row["speed"]["threads"]}


def batch_section(args: argparse.Namespace) -> list[dict[str, Any]]:
    """convnet (the seed network, CIFAR's 3x32x32) at each batch size, on every thread count up to the cores."""
    points = []
    for batch in args.batches:
        for threads in sorted({1, torch.get_num_threads()}):
            os.environ["CNNLAB_NUM_THREADS"] = str(threads)
            try:
                point = bench_point(BenchCase("convnet", batch, "cpu"), args.repeats, max(2, args.images // batch))
            finally:
                os.environ.pop("CNNLAB_NUM_THREADS")
            points.append({"batch_size": batch, **point})
    return points


def width_section(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The report's two widths of convnet (3.2: 24/48/96, 4.A.1: 64/128/256) at batch 64, 3x32x32."""
    return [{"filters": list(filters), **bench_point(BenchCase("convnet", 64, "cpu", options=(("filters", filters),)),
                                                     args.repeats, max(2, args.images // 64))}
            for filters in ((24, 48, 96), (64, 128, 256))]


def image_section(args: argparse.Namespace) -> list[dict[str, Any]]:
    """convnet and torchvision's AlexNet at growing image sides (AlexNet from 64: its pooling needs room)."""
    points = []
    for model, batch, sides in (("convnet", 64, args.sides), ("alexnet_tv", 32, [s for s in args.sides if s >= 64])):
        for side in sides:
            steps = max(2, args.images // (batch * max(1, (side // 32) ** 2)))
            point = bench_point(BenchCase(model, batch, "cpu", image_size=side), args.repeats, steps)
            points.append({"model": model, "image_size": side, "batch_size": batch, **point})
    return points


def fashion_arrays() -> tuple[np.ndarray, np.ndarray, Path]:
    from cnnlab.config import load_config
    from cnnlab.data import load_raw

    raw = load_raw(load_config(None, ["data=fashion-mnist"]).data)
    images, labels = raw.train.images.numpy(), raw.train.labels.numpy()
    return images.reshape(len(images), 28, 28), labels.astype(np.uint8), Path(raw.source)


def write_idx(path: Path, array: np.ndarray) -> None:
    code = {1: 0x08}[array.itemsize]
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with open(path, "wb") as out:
        out.write(header)
        out.write(np.ascontiguousarray(array).tobytes())


def tiled_idx(folder: Path, count: int, images: np.ndarray, labels: np.ndarray, source: Path) -> Path:
    """Fashion-MNIST's training images repeated to `count` (the test set as it is), as IDX files."""
    folder.mkdir(parents=True, exist_ok=True)
    index = np.arange(count) % len(images)
    write_idx(folder / "train-images-idx3-ubyte", images[index])
    write_idx(folder / "train-labels-idx1-ubyte", labels[index])
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        target = source / name
        data = target.read_bytes() if target.exists() else __import__("gzip").open(f"{target}.gz").read()
        (folder / name).write_bytes(data)
    return folder


def png_tree(folder: Path, count: int, images: np.ndarray, labels: np.ndarray) -> Path:
    from PIL import Image

    for i in range(count):
        target = folder / f"class{labels[i % len(labels)]}" / f"{i:07d}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[i % len(images)]).save(target)
    return folder


# `cnnlab ...` in a process that writes its own peak resident memory (VmHWM of /proc/self/status) to a file
# once its command ends (then it exits without the interpreter's teardown, as cnnlab's entry point does). Not
# the rusage of wait4: a forked child's ru_maxrss starts from its parent's resident size at the fork (Linux
# keeps the larger across exec), so every child of this process, which holds the tiled datasets, reported at
# least the parent's size (two different runs read 2,342 MB alike)
PEAK_WRAPPER = """
import os, sys
out = sys.argv.pop(1)
sys.argv[0] = 'cnnlab'
from cnnlab.cli import main
code = main()
for line in open('/proc/self/status'):
    if line.startswith('VmHWM:'):
        open(out, 'w').write(line.split()[1])
sys.stdout.flush()
os._exit(code)
"""


def train_process(items: list[str], runs: Path, name: str) -> dict[str, Any]:
    """One `cnnlab train` process: its img/s (run.json) and its main process's peak resident memory."""
    peak_file = runs.parent / f"{name}.peak_kb"
    command = [sys.executable, "-c", PEAK_WRAPPER, str(peak_file), "train", *items, "--name", name, "--runs-dir",
               str(runs), "--quiet"]
    started = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"cnnlab train {' '.join(items)} failed:\n{done.stderr[-2000:]}")
    record = json.loads((runs / name / "run.json").read_text())
    return {"images_per_second": record["images_per_second"], "peak_rss_mb": int(peak_file.read_text()) / 1024,
            "wall_seconds": wall, "train_seconds": record["train_seconds"]}


def data_section(args: argparse.Namespace, scratch: Path) -> list[dict[str, Any]]:
    images, labels, source = fashion_arrays()
    base = ["model=convnet", "epochs=1", "batch_size=64", "augment=false", "data.val_fraction=0", "device=cpu"]
    flops = training_flops((1, 32, 32))
    points = []
    for count in args.data_sizes:
        root = tiled_idx(scratch / f"idx{count}", count, images, labels, source)
        found = train_process([*base, "data=mnist", f"data.root={root}"], scratch / "runs", f"idx{count}")
        points.append({"path": "in memory (IDX, uint8)", "images": count, **found, **fraction(found, flops)})
    for count in args.folder_sizes:
        root = png_tree(scratch / f"png{count}", count, images, labels)
        found = train_process([*base, "data=imagefolder", f"data.root={root}", "data.image_size=32",
                               "data.channels=1"], scratch / "runs", f"png{count}")
        points.append({"path": "folder (PNG, streamed)", "images": count, **found, **fraction(found, flops)})
    return points


def jobs_section(args: argparse.Namespace, scratch: Path) -> list[dict[str, Any]]:
    study = scratch / "jobs.yaml"
    data = f"{{name: fashion-mnist, train_limit: {args.jobs_images}, val_fraction: 0}}"
    study.write_text(f"name: jobs\nbase: {{model: convnet, data: {data}, epochs: 2}}\nvariations: {{a: {{}}}}\n"
                     "seeds: [0, 1, 2, 3]\n")
    points = []
    for jobs in (1, 2):
        started = time.perf_counter()
        directory = scratch / f"jobs{jobs}"
        subprocess.run([*CNNLAB, "study", "run", str(study), "--dir", str(directory), "--jobs", str(jobs), "--quiet"],
                       check=True, capture_output=True)
        wall = time.perf_counter() - started
        rates = [json.loads(p.read_text())["images_per_second"] for p in sorted(directory.glob("*/run.json"))]
        # the study's throughput: every image every run trained, over the study's wall time (start-up and test
        # passes included); a run's own img/s is its training alone, beside another run when jobs > 1
        trained = len(rates) * args.jobs_images * 2
        points.append({"jobs": jobs, "runs": len(rates), "wall_seconds": wall, "per_run_images_per_second": rates,
                       "images_per_second_all_runs": trained / wall})
    return points


def training_flops(shape: tuple[int, int, int]) -> int:
    from cnnlab.models import build_model
    from cnnlab.models.summary import summarize

    return summarize(build_model("convnet", {}, num_classes=10, in_channels=shape[0], image_size=shape[1]),
                     shape).training_flops


def fraction(found: dict[str, Any], flops: int) -> dict[str, Any]:
    from cnnlab.config import load_config
    from cnnlab.train import resolve_runtime

    reference, _ = cpu_peak().reference(resolve_runtime(load_config(None, ["device=cpu"])).precision)
    gflops = found["images_per_second"] * flops / 1e9
    return {"gflops_per_second": gflops, "fraction_of_peak": None if reference is None else gflops * 1e9 / reference}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--batches", default="16,32,64,128,256,512,1024")
    parser.add_argument("--sides", default="32,64,128,224")
    parser.add_argument("--data-sizes", default="60000,600000,2400000", help="in-memory dataset sizes")
    parser.add_argument("--folder-sizes", default="20000", help="PNG folder sizes")
    parser.add_argument("--jobs-images", type=int, default=10000)
    parser.add_argument("--images", type=int, default=2560, help="images per timed block of a bench point")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="benchmarks/results/scaling.json")
    args = parser.parse_args()
    numbers = lambda text: [int(x) for x in text.split(",") if x]  # noqa: E731
    args.batches, args.sides = numbers(args.batches), numbers(args.sides)
    args.data_sizes, args.folder_sizes = numbers(args.data_sizes), numbers(args.folder_sizes)
    sections = [s for s in args.sections.split(",") if s]
    report: dict[str, Any] = {"cpu": cpu_model_name(), "cores": os.cpu_count(), "torch": torch.__version__,
                              "load_average_before": os.getloadavg(), "memory_available_mb": available_mb()}
    with tempfile.TemporaryDirectory(prefix="cnnlab-scaling-") as scratch:
        for section in sections:
            started = time.perf_counter()
            if section in ("data", "jobs"):
                report[section] = globals()[f"{section}_section"](args, Path(scratch))
            else:
                report[section] = globals()[f"{section}_section"](args)
            print(f"{section}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    report["load_average_after"] = os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    show(report)
    print(f"wrote {args.out}")


def _rate(point: dict[str, Any]) -> str:
    fraction = point.get("fraction_of_peak")
    share = f"{fraction:6.1%}" if fraction is not None else "     -"
    return f"{point['images_per_second']:>9,.0f} img/s  {share} of peak"


def show(report: dict[str, Any]) -> None:
    """The report as tables, one per section (the JSON file has every number)."""
    load = (report["load_average_before"][0], report["load_average_after"][0])
    print(f"{report['cpu']} ({report['cores']} cores), torch {report['torch']}, load average {load[0]:.1f} -> "
          f"{load[1]:.1f}; fraction of the CPU's peak for each point's precision")
    if "batch" in report:
        print("batch size (convnet 3x32x32):")
        for point in report["batch"]:
            print(f"  batch {point['batch_size']:>5}  {point['precision']}  {point['threads']} thread(s)"
                  f"  {_rate(point)}")
    if "width" in report:
        print("width (convnet, batch 64, 3x32x32):")
        for point in report["width"]:
            filters = "/".join(map(str, point["filters"]))
            print(f"  filters {filters:<11} {point['flops_per_image'] / 1e6:>8.1f} M FLOPs/img  {_rate(point)}")
    if "image" in report:
        print("image size:")
        for point in report["image"]:
            side = f"{point['image_size']}x{point['image_size']}"
            print(f"  {point['model']:<10} {side:>7} batch {point['batch_size']:>3}"
                  f"  {point['flops_per_image'] / 1e9:>7.2f} G FLOPs/img  {_rate(point)}")
    if "data" in report:
        print("dataset size (convnet 1x32x32, batch 64, one epoch of `cnnlab train`):")
        for point in report["data"]:
            print(f"  {point['path']:<24} {point['images']:>9,} images  {_rate(point)}  peak RSS "
                  f"{point['peak_rss_mb']:>7,.0f} MB  wall {point['wall_seconds']:.0f} s")
    if "jobs" in report:
        print("study of 4 runs (convnet, Fashion-MNIST, 2 epochs):")
        for point in report["jobs"]:
            each = statistics.median(point["per_run_images_per_second"])
            print(f"  --jobs {point['jobs']}  wall {point['wall_seconds']:>6.1f} s  "
                  f"{point['images_per_second_all_runs']:>8,.0f} trained img/s of wall time  (a run's own: "
                  f"{each:,.0f} img/s)")


def available_mb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


if __name__ == "__main__":
    main()
