"""`cnnlab compare-optimizers`: the same model and data trained with several optimizers, one run each,
then one plot of training loss per iteration (and per epoch) for all of them and a table.

The default reproduces the lecture's experiment (SGD, momentum, RMSprop, Adam on MNIST; Kingma & Ba 2015,
figure 2, compare them on MNIST too) on Fashion-MNIST, each optimizer at its own default learning rate,
constant, without weight decay, so that only the update rule differs. Finished runs are kept when the
command is repeated; interrupted ones are resumed.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import load_config
from ..errors import ConfigError
from ..io import atomic_write_text, check_name
from ..log import get as get_logger
from ..optim import OPTIMIZERS
from ..runs import load_run
from .runner import run_one
from .study import RunSpec
from .table import delta_cell, judge_runs

LOG = get_logger(__name__)
DEFAULT_OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adam")
DEFAULT_OVERRIDES = ("model=convnet", "data=fashion-mnist", "epochs=3", "schedule=constant", "weight_decay=0")


@dataclass
class Comparison:
    directory: Path
    rows: list[dict[str, Any]]
    plot: Path  # drawn by the caller (viz sits above experiments): api.compare_optimizers
    table: Path
    labels: list[str]


def parse_spec(spec: str) -> tuple[str, list[str]]:
    """'adam' or 'adam:0.003' -> (name, overrides)."""
    name, _, lr = spec.partition(":")
    OPTIMIZERS.get(name, f"--optimizers '{spec}'")
    return name, [f"optimizer={name}", *([f"lr={lr}"] if lr else [])]


def compare_optimizers(specs: Sequence[str] = DEFAULT_OPTIMIZERS, overrides: Sequence[str] = (),
                       directory: str | Path = "runs/compare-optimizers", config_file: str | None = None,
                       quiet: bool = False) -> Comparison:
    directory = Path(directory)
    if not specs:
        raise ConfigError("give at least one optimizer, e.g. --optimizers sgd,momentum,rmsprop,adam")
    planned = []
    for spec in specs:  # every config resolved before the first run: a typo in the last stops nothing midway
        name, extra = parse_spec(spec)
        label = check_name(spec.replace(":", "-lr"), "optimizer label")
        config = load_config(config_file, [*DEFAULT_OVERRIDES, *overrides, *extra])
        planned.append(RunSpec(label, label, config.seed, {}, config))
    for run_spec in planned:
        if not quiet:
            LOG.info(f"--- {run_spec.name}")
        run_one(run_spec, directory, quiet=quiet, replace_changed=True)
    names = [run_spec.name for run_spec in planned]
    rows = [summary_row(directory / label, label) for label in names]
    verdicts = judge_runs({label: directory / label for label in names}, names[0])  # against the first optimizer
    for row in rows:
        judged = verdicts[row["optimizer"]]
        row.update(delta=delta_cell(judged, "test_acc"), verdict=judged["verdict"], p_holm=judged["p_holm"])
    table = write_table(rows, directory / "table.csv")
    return Comparison(directory, rows, directory / "loss_per_iteration.png", table, names)


def summary_row(run_dir: Path, label: str) -> dict[str, Any]:
    run = load_run(run_dir)
    record, last = run.record, (run.metrics() or [{}])[-1]
    test = record.test or {}
    return {
        "optimizer": label, "lr": run.config.optim.lr, "status": str(run.status),
        "final_train_loss": last.get("train_loss"), "val_acc": last.get("val_acc"),
        "test_acc": test.get("acc"), "test_top5": test.get("top5"), "epochs": record.epochs_completed,
        "train_seconds": record.train_seconds, "images_per_second": record.images_per_second,
    }


def write_table(rows: list[dict[str, Any]], path: Path) -> Path:
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, text.getvalue())
    return path
