"""cnnlab against what users write instead, on the CPU: the same network, data, batch size, epochs,
optimizer and initial weights through (a) cnnlab's `train`, (b) a torchvision Dataset + DataLoader loop,
(c) Lightning, in one run; img/s of training, test accuracy, and the ratios cnnlab/plain, cnnlab/lightning.

    python benchmarks/peers_cpu.py                    # convnet, Fashion-MNIST, batch 64, 2 epochs
    python benchmarks/peers_cpu.py --limit 12800 --epochs 1 --repeats 2
    pip install 'cnnlab[bench]'                       # Lightning (>= 2.2); without it (c) is skipped

The network is cnnlab's `convnet` built by `make_model` for Fashion-MNIST (1x32x32: the 28x28 images
padded by 2, as cnnlab's data.resize=auto does), seeded alike on every side, trained with SGD momentum 0.9,
lr 0.02, weight decay 5e-4, a constant rate and no augmentation. The plain loop is what a user writes
from the PyTorch tutorials: torchvision's FashionMNIST dataset with Pad + ToTensor + Normalize per image,
DataLoader(shuffle, num_workers=2), `.item()` per step for the running loss. Lightning runs the same
module and loaders with its logger, checkpointing, progress bar and sanity check off (what a fair
comparison of the loop needs). img/s counts training only: each epoch from its first batch request to its
last step (Lightning: on_train_epoch_start to on_train_epoch_end), never the test pass or start-up, and
each side's figure is its fastest epoch (`epoch_seconds` in the JSON has them all). With --repeats the
three run in a rotated order each time, and the best of each is kept.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Subset

from cnnlab.api import train as cnnlab_train
from cnnlab.config import load_config
from cnnlab.train import make_model, resolve_runtime, seed_everything, splits_of
from cnnlab.train.cpu import cpu_model_name

LIGHTNING_HOW = "pip install 'cnnlab[bench]'  (or: pip install 'lightning>=2.2')"
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def overrides(args: argparse.Namespace) -> list[str]:
    items = ["model=convnet", "data=fashion-mnist", "device=cpu", f"batch_size={args.batch_size}",
             f"epochs={args.epochs}", "augment=false", "schedule=constant", "data.val_fraction=0",
             f"seed={args.seed}", "optim=momentum", "optim.lr=0.02", "optim.weight_decay=0.0005",
             f"train.precision={args.precision}"]
    return items + ([f"data.train_limit={args.limit}"] if args.limit else [])


def user_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    """What the config above builds (cnnlab's 'momentum' is torch's SGD with these numbers)."""
    return torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9, weight_decay=5e-4)


# ------------------------------------------------------------------------------------------ (a) cnnlab
def run_cnnlab(args: argparse.Namespace, runs: Path) -> dict[str, Any]:
    result = cnnlab_train(None, overrides(args), runs_dir=runs, name=f"peers{time.monotonic_ns()}", quiet=True)
    parameters = sum(t.numel() for t in _weights_of(result.run_dir).values())
    seconds = [row["train_seconds"] for row in result.history]
    images = result.history[0]["images_per_second"] * seconds[0]  # the same every epoch (drop_last)
    return {"images_per_second": images / min(seconds), "epoch_seconds": seconds, "test_acc": result.accuracy,
            "parameters": parameters, "status": str(result.status)}


def _weights_of(run_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    tensors = load_file(str(run_dir / "checkpoints" / "last.safetensors"))
    return {k: v for k, v in tensors.items() if k.startswith("model.")}


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


def user_loaders(root: Path, mean: tuple, std: tuple, args: argparse.Namespace) -> tuple[DataLoader, DataLoader]:
    from torchvision import datasets, transforms

    transform = transforms.Compose([transforms.Pad(2), transforms.ToTensor(), transforms.Normalize(mean, std)])
    train_set = datasets.FashionMNIST(str(root), train=True, transform=transform, download=False)
    test_set = datasets.FashionMNIST(str(root), train=False, transform=transform, download=False)
    if args.limit:
        train_set = Subset(train_set, range(args.limit))  # cnnlab's data.train_limit: the first N
    generator = torch.Generator().manual_seed(args.seed)
    train = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
                       generator=generator, persistent_workers=args.workers > 0)
    test = DataLoader(test_set, batch_size=256, num_workers=args.workers)
    return train, test


def user_model(config: Any, spec: Any, runtime: Any, seed: int) -> nn.Module:
    """cnnlab's network, seeded as cnnlab seeds it, in the memory format a user gets (NCHW)."""
    seed_everything(seed)
    return make_model(config.model, spec, runtime).to(memory_format=torch.contiguous_format)


def run_plain(model: nn.Module, train: DataLoader, test: DataLoader, epochs: int) -> dict[str, Any]:
    optimizer = user_optimizer(model)
    seconds, seen = [], 0
    for _ in range(epochs):
        model.train()
        started = time.perf_counter()
        running_loss, correct, count = 0.0, 0, 0
        for images, labels in train:
            optimizer.zero_grad()
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


def run_lightning(model: nn.Module, train: DataLoader, test: DataLoader, epochs: int) -> dict[str, Any]:
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
                        callbacks=[timer])
    trainer.fit(Module(model), train_dataloaders=train)
    return {"images_per_second": len(train.dataset) / min(timer.seconds), "epoch_seconds": timer.seconds,
            "test_acc": test_accuracy(model, test), "parameters": sum(p.numel() for p in model.parameters())}


# ---------------------------------------------------------------------------------------------- main
def best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    top = max(runs, key=lambda r: r["images_per_second"])
    return {**top, "images_per_second_all": [r["images_per_second"] for r in runs]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--limit", type=int, default=0, help="use only the first N training images (0: all)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of (b) and (c)")
    parser.add_argument("--repeats", type=int, default=1, help="train each this many times (order rotated)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-lightning", action="store_true")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                        help="cnnlab's train.precision (auto: its default, bf16 on a CPU with native bf16); the "
                             "plain loop and Lightning run fp32, as their users write them")
    parser.add_argument("--out", default="benchmarks/results/peers_cpu.json")
    args = parser.parse_args()

    config = load_config(None, overrides(args))
    runtime = resolve_runtime(config)
    splits = splits_of(config)
    spec = splits.spec
    sides = ["cnnlab", "plain"]
    skipped = None
    if args.skip_lightning:
        skipped = "--skip-lightning"
    elif lightning_available():
        sides.append("lightning")
    else:
        skipped = f"lightning is not installed: {LIGHTNING_HOW}"
        print(f"(c) skipped, {skipped}")
    load_before = os.getloadavg()
    results: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    with tempfile.TemporaryDirectory(prefix="cnnlab-peers-") as scratch:
        root = torchvision_root(Path(spec.source), Path(scratch) / "data")
        train_loader, test_loader = user_loaders(root, spec.mean, spec.std, args)
        for repeat in range(args.repeats):
            for side in sides[repeat % len(sides):] + sides[: repeat % len(sides)]:
                if side == "cnnlab":
                    results[side].append(run_cnnlab(args, Path(scratch) / "runs"))
                    continue
                model = user_model(config, spec, runtime, args.seed)
                run = run_plain if side == "plain" else run_lightning
                results[side].append(run(model, train_loader, test_loader, args.epochs))
    report: dict[str, Any] = {side: best(runs) for side, runs in results.items()}
    if skipped:
        report["lightning"] = {"skipped": skipped}
    ours = report["cnnlab"]["images_per_second"]
    ratios = {f"cnnlab/{side}": ours / report[side]["images_per_second"] for side in sides if side != "cnnlab"}
    report.update({
        "ratios": ratios, "model": "convnet", "input": [spec.channels, spec.image_size, spec.image_size],
        "data": "fashion-mnist", "train_images": spec.sizes["train"], "batch_size": args.batch_size,
        "epochs": args.epochs, "repeats": args.repeats, "workers": args.workers,
        "cpu": cpu_model_name(), "threads": torch.get_num_threads(), "torch": torch.__version__,
        "python": platform.python_version(), "load_average_before": load_before,
        "load_average_after": os.getloadavg(), "cnnlab_precision": runtime.precision,
    })
    print(f"convnet on Fashion-MNIST ({spec.sizes['train']} training images, 1x{spec.image_size}x{spec.image_size}), "
          f"batch {args.batch_size}, {args.epochs} epoch(s), {report['cpu']}, {torch.get_num_threads()} threads, "
          f"load average {load_before[0]:.1f} -> {report['load_average_after'][0]:.1f}; cnnlab in "
          f"{report['cnnlab_precision']}, the others in fp32")
    for side in ("cnnlab", "plain", "lightning"):
        entry = report[side]
        if "skipped" in entry:
            print(f"  {side:<10} skipped ({entry['skipped']})")
            continue
        print(f"  {side:<10} {entry['images_per_second']:>9,.0f} img/s   test acc {entry['test_acc']:.4f}   "
              f"{entry['parameters']:,} parameters")
    for name, ratio in ratios.items():
        print(f"  {name:<17} {ratio:.2f}x")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
