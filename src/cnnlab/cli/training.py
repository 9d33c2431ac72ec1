"""`cnnlab train`, `eval`, `predict`: one run."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import api
from ..api import loss_text
from ..errors import ConfigError, command_line
from .common import (
    add_checkpoint,
    add_device,
    add_items,
    add_mlflow,
    add_run_dir,
    add_split,
    command,
    split_items,
    top5_text,
)


def register(sub: Any) -> None:
    train = command(sub, "train", _train, "train one run (config file and/or key=value overrides)")
    add_items(train)
    train.add_argument("--name", help="run directory name under --runs-dir (default: model-data-time)")
    train.add_argument("--runs-dir", default="runs", help="where run directories go (default: runs)")
    train.add_argument("--data-root", help="where datasets are (else $CNNLAB_DATA, then the user cache)")
    add_device(train, "auto")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint")
    train.add_argument("--checkpoint", default="last", choices=("last", "previous"),
                       help="with --resume: continue from the last checkpoint (default) or the one before it")
    train.add_argument("--allow-config-change", action="store_true",
                       help="resume with changed settings a resume can apply from the resumed epoch on (train.epochs, "
                       "optim.lr, schedule.*, train.keep_epochs, train.tensorboard; recorded in run.json); others are "
                       "refused")
    train.add_argument("--overwrite", action="store_true", help="replace an existing run of the same --name")
    train.add_argument("--weights", metavar="FILE",
                       help="start from these weights (a cnnlab checkpoint, safetensors or a torch state dict), "
                            "or the model's published ones by name: imagenet, IMAGENET1K_V1, ...")
    train.add_argument("--skip-bad", action="store_true",
                       help="train without image files that fail to decode (listed in run.json) instead of stopping")
    train.add_argument("--quiet", action="store_true", help="no progress output")
    add_mlflow(train)
    train.add_argument("--nproc", type=int, metavar="N",
                       help="train on N processes of this machine (one per GPU; gloo on the CPU): runs "
                            "`torchrun --standalone --nproc-per-node N -m cnnlab train ...`; batch_size is global")

    evaluate = command(sub, "eval", _eval, "evaluate a run: loss, top-1/top-5, per-class, confusion matrix")
    add_run_dir(evaluate)
    add_split(evaluate)
    add_checkpoint(evaluate)
    add_device(evaluate)
    evaluate.add_argument("--tta", choices=("none", "flip", "center", "10crop"), default="none",
                          help="test-time augmentation: mirrored images, the centre crop of the enlarged image, or "
                               "AlexNet's ten crops (four corners, centre, and their mirrors); default none")

    predict = command(sub, "predict", _predict, "top-5 labels with probabilities for image files")
    predict.add_argument("run_dir", metavar="RUN_DIR|EXPORTED_FILE",
                         help="a run directory (runs/NAME), or a file written by `cnnlab export`")
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    predict.add_argument("-k", type=int, default=5, help="how many labels per image (default 5)")
    predict.add_argument("--max-pixels", type=int, metavar="N",
                         help="refuse larger images before decoding them (default: the run's data.max_pixels)")
    add_checkpoint(predict)


def _train(args: argparse.Namespace) -> int:
    config, overrides = split_items(args.items)
    keywords: dict[str, Any] = {"device": args.device} if args.device else {}
    if args.skip_bad:
        keywords["data.skip_bad"] = True
    if args.weights:
        keywords["model.weights"] = args.weights
    if args.data_root is not None:
        keywords["data.root"] = args.data_root
    if args.mlflow is not None:
        keywords.update({"train.mlflow": True, "train.mlflow_uri": args.mlflow})
    if args.mlflow_required:
        keywords.update({"train.mlflow": True, "train.mlflow_required": True})
    if args.nproc is not None:
        if args.nproc < 1:
            raise ConfigError(f"--nproc must be at least 1, got {args.nproc}")
        api.check_distributed(args.nproc, config, overrides, name=args.name, runs_dir=args.runs_dir,
                              resume=args.resume, overwrite=args.overwrite, **keywords)
        return api.launch_torchrun(args.nproc, _without_nproc(sys.argv[1:]))
    result = api.train(config, overrides, name=args.name, runs_dir=args.runs_dir, resume=args.resume,
                       checkpoint=args.checkpoint, allow_config_change=args.allow_config_change,
                       overwrite=args.overwrite, quiet=args.quiet, **keywords)
    if api.main_process():  # rank 0 of a distributed run speaks for all
        print_result(result)
    return result.exit_code


def _without_nproc(argv: list[str]) -> list[str]:
    out, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item == "--nproc":
            skip = True
        elif not item.startswith("--nproc="):
            out.append(item)
    return out


def print_result(result: Any) -> None:
    if result.status.scored and result.test is not None:
        test = result.test
        print(f"{result.status}: {result.reason}")
        classes = len((result.record.data or {}).get("classes", [])) or None
        print(f"test accuracy {100 * test['acc']:.2f}%{top5_text(test.get('top5'), classes)}  "
              f"loss {loss_text(test['loss'])}  ({test['count']} images)")
        print(f"training {result.train_seconds:.1f}s at {result.images_per_second:,.0f} img/s "
              f"(wall {result.seconds:.1f}s); best epoch {result.best_epoch}")
    elif result.status == api.Status.DIVERGED:
        print(f"diverged: {result.reason}", file=sys.stderr)
    elif result.status == api.Status.INTERRUPTED:
        print(f"interrupted: {result.reason}. Continue with: {command_line('train', '--resume', result.run_dir)}",
              file=sys.stderr)
    print(f"run directory: {result.run_dir}")


def _eval(args: argparse.Namespace) -> int:
    report = api.evaluate(args.run_dir, split=args.split, checkpoint=args.checkpoint, device=args.device,
                          tta=args.tta)
    views = "" if args.tta == "none" else f", test-time {args.tta}"
    low, high = report["acc_interval"]
    print(f"{args.split}: loss {loss_text(report['loss'])}  top-1 {100 * report['acc']:.2f}% "  # Wilson interval
          f"(95% CI {100 * low:.2f}-{100 * high:.2f}){top5_text(report['top5'], len(report['classes']))}  "
          f"({report['count']} images, {report['checkpoint']} checkpoint{views})")
    for note in report.get("notes", []):
        print(f"note: {note}")
    width = max(len(name) for name in report["per_class"])
    for name, acc in report["per_class"].items():
        print(f"  {name:<{width}}  {'-' if acc is None else f'{100 * acc:6.2f}%'}")
    name = args.split if args.tta == "none" else f"{args.split}_{args.tta}"
    print(f"wrote {args.run_dir}/eval_{name}.json, confusion_{name}.csv, plots/confusion_{name}.png")
    return 0


def _predict(args: argparse.Namespace) -> int:
    if args.max_pixels is not None and args.max_pixels < 1:
        raise ConfigError(f"--max-pixels must be at least 1, not {args.max_pixels}")
    for item in api.predict(args.run_dir, args.images, k=args.k, checkpoint=args.checkpoint,
                            max_pixels=args.max_pixels):
        print(item["image"])
        for label, prob in item["top"]:
            print(f"  {100 * prob:6.2f}%  {label}")
    return 0
