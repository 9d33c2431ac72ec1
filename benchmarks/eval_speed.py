"""Evaluation against training, images per second, in one process, interleaved: the Trainer's epoch, and
`evaluate_model` (what `cnnlab eval` and the end-of-run test score run) over the test split with the
model's weights in channels_last (as training keeps them) and in NCHW (as a checkpoint loads by default).

    python benchmarks/eval_speed.py --limit 12800 --clock process     # convnet, Fashion-MNIST, CPU

Evaluation costs a third of a training step per image (a forward pass and no backward, weight update or
gradients), so it should run at least as fast as training per image, faster at its larger batch
(train.eval_batch_size).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import time
from pathlib import Path

import torch

from cnnlab.config import load_config
from cnnlab.evaluate import evaluate_model
from cnnlab.train import LoaderSpec, Trainer, make_batches, make_model, resolve_runtime, splits_of
from cnnlab.train.build import make_optimizer
from cnnlab.train.cpu import cpu_model_name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="convnet")
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--limit", type=int, default=12800, help="training images per timed epoch")
    parser.add_argument("--test-limit", type=int, default=5120, help="test images per timed evaluation")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    parser.add_argument("--clock", default="wall", choices=("wall", "process"))
    parser.add_argument("--out", default="benchmarks/results/eval_speed.json")
    args = parser.parse_args()
    clock = time.process_time if args.clock == "process" else time.perf_counter

    config = load_config(None, [f"model={args.model}", f"data={args.data}", "device=cpu", "data.val_fraction=0",
                                f"data.train_limit={args.limit}", f"train.precision={args.precision}",
                                "augment=false"])
    runtime = resolve_runtime(config)
    splits = splits_of(config)
    test = splits.test.subset(torch.arange(min(args.test_limit, len(splits.test))))
    model = make_model(config.model, splits.spec, runtime)
    train = make_batches(splits.train, splits.spec, LoaderSpec.for_training(config), runtime)
    evaluation = make_batches(test, splits.spec, LoaderSpec.for_evaluation(config), runtime)
    trainer = Trainer(model, make_optimizer(config.optim, model), train, None, config, runtime)
    nchw = copy.deepcopy(model).to(memory_format=torch.contiguous_format)
    classes = splits.spec.num_classes

    def train_epoch(epoch: int) -> int:
        trainer.state.step_in_epoch = 0
        trainer.train_epoch(epoch)
        return len(train) * train.batch_size

    def evaluate(net: torch.nn.Module) -> int:
        return evaluate_model(net, evaluation, classes, runtime.autocast)["count"]

    sides = {"train epoch": train_epoch, "eval (channels_last weights)": lambda epoch: evaluate(model),
             "eval (NCHW weights)": lambda epoch: evaluate(nchw)}
    for side in sides.values():
        side(0)  # warm-up
    rates: dict[str, list[float]] = {name: [] for name in sides}
    for repeat in range(1, args.repeats + 1):
        for name, side in sides.items():
            started = clock()
            images = side(repeat)
            rates[name].append(images / (clock() - started))
    best = {name: max(values) for name, values in rates.items()}
    result = {"model": args.model, "data": args.data, "precision": runtime.precision, "cpu": cpu_model_name(),
              "threads": torch.get_num_threads(), "clock": args.clock, "load_average": os.getloadavg(),
              "eval_batch_size": config.train.eval_batch_size, "train_batch_size": config.train.batch_size,
              "images_per_second": best, "all": rates,
              "ratios_to_training": {name: rate / best["train epoch"] for name, rate in best.items()}}
    print(f"{args.model} on {args.data}, {result['cpu']}, {runtime.precision}, {result['threads']} thread(s), "
          f"{args.clock} clock, best of {args.repeats}, load average {result['load_average'][0]:.1f}")
    for name, rate in best.items():
        print(f"  {name:<30} {rate:>9,.0f} img/s   x{rate / best['train epoch']:.2f} of training "
              f"(median {statistics.median(rates[name]):,.0f})")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
