"""Loader throughput with augmentation: cnnlab against torchvision's Dataset + DataLoader + transforms.v2
on the same data, in the same run, on the same device. Only the loader is timed (batches ready on the
device, normalised), no model.

    python benchmarks/loader_throughput.py                 # CPU; CIFAR-10 if present, else CIFAR-shaped tensors
    python benchmarks/loader_throughput.py --device cuda --workers 8

Part 1, in-memory (CIFAR-10 shape, 50,000 x 3x32x32): random crop with 4-pixel padding + horizontal flip,
batch 512. cnnlab keeps the uint8 set on the device and augments whole batches there; torchvision
transforms each sample in worker processes. Target: cnnlab >= 5x.
Part 2, a folder of JPEGs (generated, ~300x200 like Caltech-101): random resized crop to 224 + flip,
batch 64: cnnlab's worker path (decode with libjpeg's DCT downscaling), its decoded uint8 cache (disk),
and the cache held on the device, against torchvision's ImageFolder.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets
from torchvision.transforms import v2

from cnnlab.config import load_config
from cnnlab.data import AugmentPlan, DeviceBatches, ImageSet, load_raw
from cnnlab.errors import DataError
from cnnlab.train import LoaderSpec, make_batches, resolve_runtime, splits_of

MEAN, STD = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_epochs(make_iter, device: torch.device, epochs: int) -> float:
    """Best images/s over `epochs` epochs, after one warm-up epoch."""
    best = 0.0
    for epoch in range(epochs + 1):
        _sync(device)
        started, count = time.perf_counter(), 0
        for _images, labels in make_iter(epoch):
            count += labels.shape[0]
        _sync(device)
        if epoch:
            best = max(best, count / (time.perf_counter() - started))
    return best


class TensorImages(Dataset):
    """The per-sample baseline: one uint8 image at a time through torchvision transforms."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        return self.transform(self.images[index]), self.labels[index]


def torch_loader(dataset: Dataset, batch: int, workers: int, device: torch.device):
    loader = DataLoader(dataset, batch_size=batch, shuffle=True, drop_last=True, num_workers=workers,
                        pin_memory=device.type == "cuda", persistent_workers=workers > 0)

    def run(epoch: int):
        for images, labels in loader:
            yield images.to(device, non_blocking=True), labels.to(device, non_blocking=True)

    return run


def in_memory(device: torch.device, workers: int, epochs: int) -> dict:
    try:
        raw = load_raw(load_config(None, ["data=cifar10"]).data)
        data, source = raw.train, "CIFAR-10"
    except DataError:
        generator = torch.Generator().manual_seed(0)
        data = ImageSet(torch.randint(0, 256, (50000, 3, 32, 32), dtype=torch.uint8, generator=generator),
                        torch.randint(0, 10, (50000,), generator=generator))
        source = "CIFAR-shaped random tensors"
    ours = DeviceBatches(data, MEAN, STD, 512, device, shuffle=True, drop_last=True,
                         channels_last=device.type != "mps", augment=AugmentPlan(hflip=True, crop_padding=4))
    transform = v2.Compose([v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip(),
                            v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)])
    theirs = torch_loader(TensorImages(data.images, data.labels, transform), 512, workers, device)
    result = {"source": source, "cnnlab": time_epochs(lambda e: ours.batches(e), device, epochs),
              "torchvision": time_epochs(theirs, device, epochs)}
    result["ratio"] = result["cnnlab"] / result["torchvision"]
    return result


def make_jpeg_folder(root: Path, classes: int, per_class: int) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(classes):
        folder = root / f"class_{c:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            height, width = int(rng.integers(180, 240)), int(rng.integers(260, 320))
            base = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
            image = Image.fromarray(base).resize((width, height), Image.BILINEAR)
            image.save(folder / f"image_{i:04d}.jpg", quality=90)
    return root


def streaming(device: torch.device, workers: int, epochs: int, folder: Path) -> dict:
    transform = v2.Compose([v2.ToImage(), v2.RandomResizedCrop(224, antialias=True), v2.RandomHorizontalFlip(),
                            v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)])
    theirs = torch_loader(datasets.ImageFolder(str(folder), transform=transform), 64, workers, device)
    result = {"images": sum(1 for _ in folder.rglob("*.jpg")), "torchvision": time_epochs(theirs, device, epochs)}
    for cache in ("none", "disk", "device"):
        config = load_config(None, ["data=imagefolder", f"data.root={folder}", "data.image_size=224",
                                    "data.val_fraction=0", "data.test_fraction=0.05", f"data.workers={workers}",
                                    f"data.cache={cache}", "batch_size=64", "augment.scale=[0.08,1.0]",
                                    "augment.hflip=true", "model=convnet", f"device={device}"])
        splits = splits_of(config)
        batches = make_batches(splits.train, splits.spec, LoaderSpec.for_training(config), resolve_runtime(config),
                               splits.cache)
        result[f"cnnlab_{cache}"] = time_epochs(lambda e, b=batches: b.batches(e), device, epochs)
        result[f"ratio_{cache}"] = result[f"cnnlab_{cache}"] / result["torchvision"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=2, help="loader processes for both sides")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs (best is reported)")
    parser.add_argument("--folder", help="an existing image folder for part 2 (default: generate one)")
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--out", default="benchmarks/results/loader_throughput.json")
    args = parser.parse_args()
    device = torch.device(args.device)

    memory = in_memory(device, args.workers, args.epochs)
    print(f"in-memory {memory['source']}, crop 4 + flip, batch 512, {device}, {args.workers} workers for torchvision:")
    print(f"  torchvision Dataset+DataLoader : {memory['torchvision']:>12,.0f} img/s")
    print(f"  cnnlab device-resident         : {memory['cnnlab']:>12,.0f} img/s   ratio {memory['ratio']:.1f}x")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.folder) if args.folder else make_jpeg_folder(Path(tmp), args.classes, args.per_class)
        stream = streaming(device, args.workers, args.epochs, folder)
    print(f"JPEG folder ({stream['images']} images ~300x200), random resized crop 224 + flip, batch 64, "
          f"{args.workers} workers:")
    print(f"  torchvision ImageFolder        : {stream['torchvision']:>12,.0f} img/s")
    for cache in ("none", "disk", "device"):
        print(f"  cnnlab cache={cache:<7}           : {stream[f'cnnlab_{cache}']:>12,.0f} img/s   "
              f"ratio {stream[f'ratio_{cache}']:.2f}x")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"in_memory": memory, "streaming": stream, "device": str(device),
                                          "workers": args.workers, "torch": torch.__version__}, indent=2) + "\n")


if __name__ == "__main__":
    main()
