"""cnnlab's Trainer against a minimal hand-written PyTorch loop: same model, data, batch size, device,
precision, optimizer; in the same process, interleaved, best of several repeats.

    python benchmarks/loop_overhead.py                       # convnet, Fashion-MNIST (or synthetic), CPU
    python benchmarks/loop_overhead.py --device cuda --batch-size 512

The hand-written loop is what a careful user writes: the dataset already on the device as uint8, one
randperm per epoch, gather + normalise on the device, forward/backward/step, loss and accuracy summed
on the device and read once per epoch. The ratio (cnnlab / plain) says what the Trainer's bookkeeping
(progress, divergence checks, interrupt flag, schedules) costs; the target is >= 0.97.

On a shared machine wall-clock epochs swing with the neighbours' load; `--clock process` times each epoch
in this process's CPU seconds instead (with OMP_NUM_THREADS=1: one thread, so CPU time is the work done,
whatever else the machine runs).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from cnnlab.config import load_config
from cnnlab.data import DataSpec, DeviceBatches, ImageSet
from cnnlab.errors import DataError
from cnnlab.optim import build_optimizer
from cnnlab.train import Trainer, make_model, resolve_runtime, splits_of


def dataset(config) -> tuple[ImageSet, tuple, tuple]:
    try:
        splits = splits_of(config)
        return splits.train, splits.spec.mean, splits.spec.std
    except DataError:  # no Fashion-MNIST here: the same shapes, synthetic
        generator = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (54000, 1, 28, 28), dtype=torch.uint8, generator=generator)
        return ImageSet(images, torch.randint(0, 10, (54000,), generator=generator)), (0.286,), (0.353,)


CLOCK = time.perf_counter  # or time.process_time (--clock process)


def plain_epoch(model, optimizer, images, labels, mean, std, batch_size, runtime, epoch) -> float:
    """The hand-written loop. Returns seconds."""
    model.train()
    scale = (1.0 / (255.0 * torch.tensor(std))).view(1, -1, 1, 1).to(runtime.device)
    shift = (-torch.tensor(mean) / torch.tensor(std)).view(1, -1, 1, 1).to(runtime.device)
    memory_format = torch.channels_last if runtime.channels_last else torch.contiguous_format
    _sync(runtime.device)
    started = CLOCK()
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(epoch)).to(runtime.device)
    loss_sum = torch.zeros((), device=runtime.device)
    correct = torch.zeros((), dtype=torch.int64, device=runtime.device)
    for start in range(0, len(labels) - batch_size + 1, batch_size):
        index = order[start : start + batch_size]
        x = images[index].to(dtype=torch.float32, memory_format=memory_format) * scale + shift
        y = labels[index]
        with runtime.autocast():
            logits = model(x)
            loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach() * batch_size
        correct += (logits.argmax(1) == y).sum()
    float(loss_sum), int(correct)  # the one sync per epoch
    return CLOCK() - started


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="convnet")
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="epochs timed per side (interleaved)")
    parser.add_argument("--limit", type=int, default=0, help="use only N training images (0: all)")
    parser.add_argument("--clock", default="wall", choices=("wall", "process"),
                        help="wall seconds, or this process's CPU seconds (robust on a shared machine)")
    parser.add_argument("--out", default="benchmarks/results/loop_overhead.json")
    args = parser.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "process" else time.perf_counter

    overrides = [f"model={args.model}", f"data={args.data}", f"device={args.device}",
                 f"batch_size={args.batch_size}", "data.val_fraction=0"]
    if args.limit:
        overrides.append(f"data.train_limit={args.limit}")
    config = load_config(None, overrides)
    runtime = resolve_runtime(config)
    train, mean, std = dataset(config)
    if args.limit:
        train = ImageSet(train.images[: args.limit], train.labels[: args.limit])
    spec = DataSpec(args.data, tuple(map(str, range(10))), train.channels, train.size[0], mean, std, {}, "benchmark")

    torch.manual_seed(0)
    plain_model = make_model(config.model, spec, runtime)
    torch.manual_seed(0)
    ours_model = make_model(config.model, spec, runtime)
    plain_optimizer = build_optimizer(config.optim, plain_model.parameters())
    batches = DeviceBatches(train, mean, std, args.batch_size, runtime.device, shuffle=True, drop_last=True,
                            channels_last=runtime.channels_last)
    ours_optimizer = build_optimizer(config.optim, ours_model.parameters())
    trainer = Trainer(ours_model, ours_optimizer, batches, None, config, runtime)
    images, labels = train.images.to(runtime.device), train.labels.to(runtime.device)

    # warm-up (allocator, cuDNN autotuning), then interleave so drift hits both sides alike
    plain_epoch(plain_model, plain_optimizer, images, labels, mean, std, args.batch_size, runtime, 0)
    trainer.train_epoch(0)
    plain_times, ours_times = [], []
    for repeat in range(1, args.repeats + 1):
        plain_times.append(plain_epoch(plain_model, plain_optimizer, images, labels, mean, std, args.batch_size,
                                       runtime, repeat))
        _sync(runtime.device)
        started = CLOCK()
        trainer.state.step_in_epoch = 0
        trainer.train_epoch(repeat)
        _sync(runtime.device)
        ours_times.append(CLOCK() - started)

    images_per_epoch = (len(train) // args.batch_size) * args.batch_size
    plain = images_per_epoch / min(plain_times)
    ours = images_per_epoch / min(ours_times)
    result = {
        "model": args.model, "data": args.data, "device": runtime.describe(), "precision": runtime.precision,
        "channels_last": runtime.channels_last, "batch_size": args.batch_size, "images_per_epoch": images_per_epoch,
        "plain_img_per_s": plain, "cnnlab_img_per_s": ours, "ratio": ours / plain,
        "plain_epoch_seconds": plain_times, "cnnlab_epoch_seconds": ours_times,
        "torch": torch.__version__, "threads": torch.get_num_threads(), "clock": args.clock,
        "load_average": os.getloadavg(),
    }
    print(f"{args.model} on {args.data}, {runtime.describe()} ({runtime.precision}), batch {args.batch_size}, "
          f"{images_per_epoch} images/epoch, best of {args.repeats}, {args.clock} clock, "
          f"{torch.get_num_threads()} thread(s), load average {os.getloadavg()[0]:.1f}")
    print(f"  plain PyTorch loop : {plain:>12,.0f} img/s   (median epoch {statistics.median(plain_times):.2f}s)")
    print(f"  cnnlab Trainer     : {ours:>12,.0f} img/s   (median epoch {statistics.median(ours_times):.2f}s)")
    print(f"  ratio cnnlab/plain : {ours / plain:.3f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
