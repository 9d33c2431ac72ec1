"""cnnlab against what users write instead, on the CPU, at matched precision: the same network, data, batch
size, epochs, optimizer and initial weights through (a) cnnlab's `train`, (b) a torchvision Dataset +
DataLoader loop, (c) Lightning, each in fp32 and in bf16; img/s of training, test accuracy, the ratios
cnnlab/plain and cnnlab/lightning at each precision, and cnnlab's verdict on the accuracies.

    python benchmarks/peers_cpu.py                    # convnet, Fashion-MNIST, batch 64, 2 epochs, 3 seeds
    python benchmarks/peers_cpu.py --limit 12800 --epochs 1 --repeats 1 --precisions bf16
    pip install 'cnnlab[bench]'                       # Lightning (>= 2.2); without it (c) is skipped

The network is cnnlab's `convnet` built by `make_model` for Fashion-MNIST (1x32x32: the 28x28 images
padded by 2, as cnnlab's data.resize=auto does), seeded alike on every side, trained with SGD momentum 0.9,
lr 0.02, weight decay 5e-4, a constant rate and no augmentation. The plain loop is what a user writes
from the PyTorch tutorials: torchvision's FashionMNIST dataset with Pad + ToTensor + Normalize per image,
DataLoader(shuffle, num_workers=2), `.item()` per step for the running loss; in bf16 its forward and loss run
under `torch.autocast("cpu", torch.bfloat16)`. Lightning runs the same module and loaders with
precision="32-true" or "bf16-mixed", its logger, checkpointing, progress bar and sanity check off. cnnlab
runs train.precision=fp32 or bf16.

Every training is its own process (a side's threads, allocator and loader workers never reach another's),
run one after the other, interleaved: for each repeat (seed 0, 1, 2, ...) each precision, and in it each
side in an order rotated from one repeat to the next. img/s counts training only: a run's fastest epoch,
from its first batch request to its last step (Lightning: on_train_epoch_start to on_train_epoch_end),
never the test pass or start-up. A side's figure is the median over the repeats, its spread (max - min) /
median; the accuracies, one per seed, are judged by cnnlab's own verdict (paired over the seeds, Holm over
the two peers, equivalent within +-0.5 points).
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Subset

LIGHTNING_HOW = "pip install 'cnnlab[bench]'  (or: pip install 'lightning>=2.2')"
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
SIDES = ("cnnlab", "plain", "lightning")


def overrides(args: argparse.Namespace, precision: str, seed: int) -> list[str]:
    items = ["model=convnet", "data=fashion-mnist", "device=cpu", f"batch_size={args.batch_size}",
             f"epochs={args.epochs}", "augment=false", "schedule=constant", "data.val_fraction=0",
             f"seed={seed}", "optim=momentum", "optim.lr=0.02", "optim.weight_decay=0.0005",
             f"train.precision={precision}"]
    return items + ([f"data.train_limit={args.limit}"] if args.limit else [])


def user_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    """What the config above builds (cnnlab's 'momentum' is torch's SGD with these numbers)."""
    return torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9, weight_decay=5e-4)


# ------------------------------------------------------------------------------------------ (a) cnnlab
def run_cnnlab(args: argparse.Namespace, precision: str, seed: int, runs: Path) -> dict[str, Any]:
    from cnnlab.api import train as cnnlab_train

    result = cnnlab_train(None, overrides(args, precision, seed), runs_dir=runs, name=f"peers{time.monotonic_ns()}",
                          quiet=True)
    seconds = [row["train_seconds"] for row in result.history]
    images = result.history[0]["images_per_second"] * seconds[0]  # the same every epoch (drop_last)
    record = json.loads((result.run_dir / "run.json").read_text())
    return {"images_per_second": images / min(seconds), "epoch_seconds": seconds, "test_acc": result.accuracy,
            "parameters": record["parameters"], "status": str(result.status), "speed": record.get("speed")}


# ------------------------------------------------------------------------------- (b) the plain loop
def torchvision_root(source: Path, scratch: Path) -> Path:
    """torchvision's FashionMNIST layout (ROOT/FashionMNIST/raw/*-ubyte) unpacked from the IDX files."""
    raw = scratch / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        target = raw / name
        if (source / name).exists():
            shutil.copyfile(source / name, target)
        else:
            with gzip.open(source / f"{name}.gz") as packed, open(target, "wb") as out:
                shutil.copyfileobj(packed, out)
    return scratch


def user_loaders(root: Path, mean: tuple, std: tuple, args: argparse.Namespace,
                 seed: int) -> tuple[DataLoader, DataLoader]:
    from torchvision import datasets, transforms

    transform = transforms.Compose([transforms.Pad(2), transforms.ToTensor(), transforms.Normalize(mean, std)])
    train_set = datasets.FashionMNIST(str(root), train=True, transform=transform, download=False)
    test_set = datasets.FashionMNIST(str(root), train=False, transform=transform, download=False)
    if args.limit:
        train_set = Subset(train_set, range(args.limit))  # cnnlab's data.train_limit: the first N
    generator = torch.Generator().manual_seed(seed)
    train = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
                       generator=generator, persistent_workers=args.workers > 0)
    test = DataLoader(test_set, batch_size=256, num_workers=args.workers)
    return train, test


def user_model(args: argparse.Namespace, seed: int) -> tuple[nn.Module, Any]:
    """cnnlab's network, seeded as cnnlab seeds it, in the memory format a user gets (NCHW); and the spec."""
    from cnnlab.config import load_config
    from cnnlab.train import make_model, resolve_runtime, seed_everything, splits_of

    config = load_config(None, overrides(args, "fp32", seed))
    spec = splits_of(config).spec
    seed_everything(seed)
    model = make_model(config.model, spec, resolve_runtime(config)).to(memory_format=torch.contiguous_format)
    return model, spec


def run_plain(model: nn.Module, train: DataLoader, test: DataLoader, epochs: int, precision: str) -> dict[str, Any]:
    optimizer = user_optimizer(model)
    seconds, seen = [], 0
    for _ in range(epochs):
        model.train()
        started = time.perf_counter()
        running_loss, correct, count = 0.0, 0, 0
        for images, labels in train:
            optimizer.zero_grad()
            with torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16"):
                outputs = model(images)
                loss = F.cross_entropy(outputs, labels)
            loss.backward()
            optimizer.step()
            running_loss += loss.item() * labels.size(0)
            correct += (outputs.argmax(1) == labels).sum().item()
            count += labels.size(0)
        seconds.append(time.perf_counter() - started)
        seen = count
    return {"images_per_second": seen / min(seconds), "epoch_seconds": seconds, "test_acc": test_accuracy(model, test),
            "parameters": sum(p.numel() for p in model.parameters())}


@torch.no_grad()
def test_accuracy(model: nn.Module, test: DataLoader) -> float:
    """In fp32, as cnnlab scores every run whatever it trained in (train/runtime.py, Runtime.scoring)."""
    model.eval()
    correct = count = 0
    for images, labels in test:
        correct += int((model(images).argmax(1) == labels).sum())
        count += labels.size(0)
    return correct / count


# ---------------------------------------------------------------------------------------- (c) Lightning
def lightning_available() -> bool:
    try:
        import lightning  # noqa: F401
    except ImportError:
        return False
    return True


def run_lightning(model: nn.Module, train: DataLoader, test: DataLoader, epochs: int, precision: str) -> dict[str, Any]:
    import lightning as L

    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # its start-up tips and notices

    class Module(L.LightningModule):
        def __init__(self, net: nn.Module) -> None:
            super().__init__()
            self.net = net

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            images, labels = batch
            loss = F.cross_entropy(self.net(images), labels)
            self.log("train_loss", loss, prog_bar=False)  # what users write; no logger is attached
            return loss

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return user_optimizer(self.net)

    class EpochTimer(L.Callback):
        def __init__(self) -> None:
            self.seconds: list[float] = []

        def on_train_epoch_start(self, trainer: Any, module: Any) -> None:
            self.started = time.perf_counter()

        def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
            self.seconds.append(time.perf_counter() - self.started)

    timer = EpochTimer()
    trainer = L.Trainer(accelerator="cpu", devices=1, max_epochs=epochs, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        callbacks=[timer], precision="bf16-mixed" if precision == "bf16" else "32-true")
    trainer.fit(Module(model), train_dataloaders=train)
    return {"images_per_second": len(train.dataset) / min(timer.seconds), "epoch_seconds": timer.seconds,
            "test_acc": test_accuracy(model, test), "parameters": sum(p.numel() for p in model.parameters())}


# ------------------------------------------------------------------------------ one training, one process
def one_run(args: argparse.Namespace) -> dict[str, Any]:
    """--child SIDE: train one side at --precision, --seed, and return its result."""
    with tempfile.TemporaryDirectory(prefix="cnnlab-peers-") as scratch:
        if args.child == "cnnlab":
            return run_cnnlab(args, args.precision, args.seed, Path(scratch) / "runs")
        model, spec = user_model(args, args.seed)
        root = torchvision_root(Path(spec.source), Path(scratch) / "data")
        train, test = user_loaders(root, spec.mean, spec.std, args, args.seed)
        run = run_plain if args.child == "plain" else run_lightning
        return {**run(model, train, test, args.epochs, args.precision), "threads": torch.get_num_threads()}


def child(args: argparse.Namespace, side: str, precision: str, seed: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", side, "--precision", precision, "--seed", str(seed),
               "--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--limit", str(args.limit),
               "--workers", str(args.workers)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{side} ({precision}, seed {seed}) failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------- main
def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    rates = [run["images_per_second"] for run in runs]
    median = statistics.median(rates)
    return {"images_per_second": median, "images_per_second_all": rates,
            "spread": (max(rates) - min(rates)) / median, "test_acc_all": [run["test_acc"] for run in runs],
            "test_acc": statistics.fmean(run["test_acc"] for run in runs), "parameters": runs[0]["parameters"],
            "runs": runs}


def verdicts(report: dict[str, Any], peers: list[str]) -> dict[str, Any]:
    """cnnlab against each peer on the per-seed test accuracies: paired over the seeds, Holm over the peers."""
    from cnnlab.evaluate import stats

    ours = report["cnnlab"]["test_acc_all"]
    if len(ours) < 2 or not peers:
        return {peer: {"verdict": "1 seed" if len(ours) == 1 else None} for peer in peers}
    comparisons = {peer: stats.paired_seeds(ours, report[peer]["test_acc_all"]) for peer in peers}
    adjusted = stats.holm([c.p_value for c in comparisons.values()])
    points = lambda value: None if value is None else 100 * value  # noqa: E731
    return {peer: {"delta_points": 100 * c.delta, "low_points": points(c.low), "high_points": points(c.high),
                   "verdict": stats.verdict(c, p, 0.005)} for (peer, c), p in zip(comparisons.items(), adjusted)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--limit", type=int, default=0, help="use only the first N training images (0: all)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of (b) and (c)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each side and precision, seeds 0, 1, ...")
    parser.add_argument("--precisions", default="fp32,bf16", help="comma-separated: fp32, bf16 (default both)")
    parser.add_argument("--skip-lightning", action="store_true")
    parser.add_argument("--out", default="benchmarks/results/peers_cpu.json")
    parser.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_run(args)))
        return
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    sides, skipped = ["cnnlab", "plain"], None
    if args.skip_lightning:
        skipped = "--skip-lightning"
    elif lightning_available():
        sides.append("lightning")
    else:
        skipped = f"lightning is not installed: {LIGHTNING_HOW}"
        print(f"(c) skipped, {skipped}")
    load_before = os.getloadavg()
    results: dict[str, dict[str, list[dict[str, Any]]]] = {p: {side: [] for side in sides} for p in precisions}
    for repeat in range(args.repeats):
        for precision in precisions:
            for side in sides[repeat % len(sides):] + sides[: repeat % len(sides)]:
                results[precision][side].append(child(args, side, precision, repeat))
    from cnnlab.train.cpu import cpu_model_name

    first = results[precisions[0]]["cnnlab"][0]
    report: dict[str, Any] = {
        "model": "convnet", "input": [1, 32, 32], "data": "fashion-mnist", "train_images": args.limit or 60_000,
        "batch_size": args.batch_size, "epochs": args.epochs, "repeats": args.repeats,
        "seeds": list(range(args.repeats)), "workers": args.workers, "cpu": cpu_model_name(), "cores": os.cpu_count(),
        "threads": first["speed"]["threads"],
        "torch": torch.__version__, "python": platform.python_version(), "load_average_before": load_before,
        "precisions": {},
    }
    for precision in precisions:
        entry: dict[str, Any] = {side: summarise(runs) for side, runs in results[precision].items()}
        if skipped:
            entry["lightning"] = {"skipped": skipped}
        peers = [side for side in sides if side != "cnnlab"]
        ours = entry["cnnlab"]["images_per_second"]
        entry["ratios"] = {f"cnnlab/{side}": ours / entry[side]["images_per_second"] for side in peers}
        entry["verdicts"] = verdicts(entry, peers)
        report["precisions"][precision] = entry
    report["load_average_after"] = os.getloadavg()
    print_report(report, precisions)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


def print_report(report: dict[str, Any], precisions: list[str]) -> None:
    load = (report["load_average_before"][0], report["load_average_after"][0])
    print(f"convnet on Fashion-MNIST ({report['train_images']:,} training images, 1x32x32), batch "
          f"{report['batch_size']}, {report['epochs']} epoch(s), {report['cpu']} ({report['cores']} cores, cnnlab "
          f"on {report['threads']} threads), load average {load[0]:.1f} -> {load[1]:.1f}; median of "
          f"{report['repeats']} interleaved runs (seeds {', '.join(map(str, report['seeds']))}), each in its own "
          "process")
    for precision in precisions:
        entry = report["precisions"][precision]
        print(f"{precision}:")
        for side in SIDES:
            part = entry.get(side)
            if part is None:
                continue
            if "skipped" in part:
                print(f"  {side:<10} skipped ({part['skipped']})")
                continue
            rates = " / ".join(f"{rate:,.0f}" for rate in part["images_per_second_all"])
            print(f"  {side:<10} {part['images_per_second']:>9,.0f} img/s  (runs {rates}; spread "
                  f"{part['spread']:.1%})  test acc {100 * part['test_acc']:.2f}%")
        for name, ratio in entry["ratios"].items():
            verdict = entry["verdicts"].get(name.split("/")[1], {})
            interval = ""
            if verdict.get("low_points") is not None:
                interval = (f", accuracy {verdict['delta_points']:+.2f} points [{verdict['low_points']:+.2f}, "
                            f"{verdict['high_points']:+.2f}]")
            print(f"  {name:<17} {ratio:.2f}x{interval}: {verdict.get('verdict')}")


if __name__ == "__main__":
    main()
