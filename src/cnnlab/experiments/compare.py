"""`cnnlab compare-optimizers`: the same model and data trained with several optimizers, one run each,
then one plot of training loss per iteration (and per epoch) for all of them and a table.

The default reproduces the lecture's experiment (SGD, momentum, RMSprop, Adam on MNIST; Kingma & Ba 2015,
figure 2, compare them on MNIST too) on Fashion-MNIST, each optimizer at its own default learning rate,
constant, without weight decay, so that only the update rule differs. Finished runs are kept when the
command is repeated; interrupted ones are resumed.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..api import load_run, train
from ..errors import ConfigError
from ..optim import OPTIMIZERS

DEFAULT_OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adam")
DEFAULT_OVERRIDES = ("model=convnet", "data=fashion-mnist", "epochs=3", "schedule=constant", "weight_decay=0")


@dataclass
class Comparison:
    directory: Path
    rows: list[dict[str, Any]]
    plot: Path
    table: Path


def parse_spec(spec: str) -> tuple[str, list[str]]:
    """'adam' or 'adam:0.003' -> (name, overrides)."""
    name, _, lr = spec.partition(":")
    OPTIMIZERS.get(name, f"--optimizers '{spec}'")
    return name, [f"optimizer={name}", *([f"lr={lr}"] if lr else [])]


def compare_optimizers(specs: Sequence[str] = DEFAULT_OPTIMIZERS, overrides: Sequence[str] = (),
                       directory: str | Path = "runs/compare-optimizers", config: str | None = None,
                       quiet: bool = False) -> Comparison:
    directory = Path(directory)
    if not specs:
        raise ConfigError("give at least one optimizer, e.g. --optimizers sgd,momentum,rmsprop,adam")
    names = []
    for spec in specs:
        name, extra = parse_spec(spec)
        label = spec.replace(":", "-lr")
        names.append(label)
        run_dir = directory / label
        status = load_run(run_dir).status if (run_dir / "config.yaml").is_file() else None
        if status in ("completed", "stopped_early", "diverged"):
            continue
        if status == "interrupted":
            train(resume=run_dir, quiet=quiet)
            continue
        if not quiet:
            print(f"--- {label}")
        train(config, [*DEFAULT_OVERRIDES, *overrides, *extra], runs_dir=directory, name=label, overwrite=True,
              quiet=quiet)
    rows = [summary_row(directory / label, label) for label in names]
    table = write_table(rows, directory / "table.csv")
    from ..viz.compare import plot_loss_curves

    plot = directory / "loss_per_iteration.png"
    plot_loss_curves([directory / label for label in names], names, plot)
    return Comparison(directory, rows, plot, table)


def summary_row(run_dir: Path, label: str) -> dict[str, Any]:
    run = load_run(run_dir)
    info, last = run.info, (run.metrics() or [{}])[-1]
    test = info.get("test") or {}
    return {
        "optimizer": label, "lr": run.config.optim.lr, "status": run.status,
        "final_train_loss": last.get("train_loss"), "val_acc": last.get("val_acc"),
        "test_acc": test.get("acc"), "test_top5": test.get("top5"), "epochs": info.get("epochs_completed"),
        "train_seconds": info.get("train_seconds"), "images_per_second": info.get("images_per_second"),
    }


def write_table(rows: list[dict[str, Any]], path: Path) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path
