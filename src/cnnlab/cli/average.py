"""`cnnlab average`: a run's kept epoch checkpoints averaged (SWA-style) into a new run."""

from __future__ import annotations

import argparse
from typing import Any

from .. import api
from ..errors import ConfigError
from .common import add_device, add_run_dir, command


def register(sub: Any) -> None:
    average = command(sub, "average", _average, "average the weights of a run's kept epochs (train.keep_epochs) "
                      "into a new run, batch-norm statistics recomputed on the training data; eval/predict take it")
    add_run_dir(average)
    which = average.add_mutually_exclusive_group(required=True)
    which.add_argument("--epochs", metavar="E,E,...", help="the epochs to average, e.g. 3,4,5")
    which.add_argument("--last", type=int, metavar="N", help="the run's last N epochs")
    average.add_argument("--name", help="the new run's name (default: RUN-avg, beside the run)")
    average.add_argument("--runs-dir", help="where the new run goes (default: the run's own folder)")
    average.add_argument("--overwrite", action="store_true", help="replace an existing run of that name")
    add_device(average)


def _average(args: argparse.Namespace) -> int:
    epochs = None
    if args.epochs is not None:
        try:
            epochs = [int(part) for part in args.epochs.split(",") if part.strip()]
        except ValueError:
            raise ConfigError(f"--epochs takes whole numbers separated by commas (3,4,5), "
                              f"got '{args.epochs}'") from None
    result = api.average(args.run_dir, epochs=epochs, last=args.last, name=args.name, runs_dir=args.runs_dir,
                         overwrite=args.overwrite, device=args.device)
    averaged, test = result.record.averaged or {}, result.record.test or {}
    print(f"averaged epochs {', '.join(map(str, averaged['epochs']))} of {args.run_dir}"
          f"{' (batch norm recomputed)' if averaged['batch_norm_recomputed'] else ''}: test top-1 "
          f"{100 * test['acc']:.2f}% -> {result.path}")
    return 0
