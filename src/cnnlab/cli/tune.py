"""`cnnlab tune grid|search`: the grid protocol of the Caltech-101 study, and an Optuna search."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import api
from .common import add_items, command, group, split_items, table


def register(sub: Any) -> None:
    tune = group(sub, "tune", "hyperparameter tuning: the grid protocol or an Optuna search", "hyperparameter tuning")
    grid = command(tune, "grid", _grid,
                   "train every grid point with validation, discard diverged ones, retrain the best on "
                   "train+val for its best epoch count, report test accuracy")
    add_items(grid)
    grid.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                      help="a grid axis, repeatable: --grid lr=0.1,0.01 --grid schedule.step_size=10,20")
    grid.add_argument("--pairs", action="append", default=[], metavar="K1,K2=A:B,C:D",
                      help="points that go together, not a grid: --pairs lr,schedule.step_size=0.1:20,0.01:30")
    grid.add_argument("--dir", help="tuning directory (default: runs/tune_grid)")
    grid.add_argument("--jobs", type=int, default=1, help="grid points at once, as separate processes")
    search = command(tune, "search", _search, "Optuna TPE search with pruning over a YAML search space")
    search.add_argument("file", metavar="NAME|SEARCH.yaml",
                        help="a search file, or one that comes with cnnlab by name (search_digits)")
    search.add_argument("items", nargs="*", metavar="key=value", help="overrides applied to every trial")
    search.add_argument("--dir", help="search directory (default: runs/<search name>)")
    search.add_argument("--trials", type=int, help="total number of trials (overrides the file)")
    search.add_argument("--storage", help="Optuna storage URL (default sqlite:///DIR/optuna.db)")


def _grid(args: argparse.Namespace) -> int:
    config, overrides = split_items(args.items)
    directory = args.dir or "runs/tune_grid"
    result = api.tune_grid(config, overrides, args.grid, directory, args.jobs, pairs=args.pairs)
    table(*grid_table(result))
    if result.interrupted:
        print("interrupted; run the same command again to continue")
        return 130
    if result.final is None or result.best is None:
        print("no grid point finished without diverging: nothing to retrain", file=sys.stderr)
        return 3
    test = result.final["test"] or {}
    print(f"best {result.best['grid']} (val top-1 {100 * result.best['best_val_acc']:.2f}% at epoch "
          f"{result.best['best_epoch']}); retrained on train+val for {result.final['epochs']} epochs: "
          f"test top-1 {100 * test.get('acc', 0):.2f}%  top-5 {100 * test.get('top5', 0):.2f}%")
    print(f"wrote {result.directory / 'tune.json'}; final run: {result.final['run']}")
    return 0


def grid_table(result: Any) -> tuple[list[str], list[list[str]]]:
    keys = list(result.rows[0]["grid"]) if result.rows else []
    headers = [*(k.split(".")[-1] for k in keys), "status", "best val top-1", "best epoch", "epochs trained",
               "train s"]
    cells = []
    for row in result.rows:
        val = "-" if row["best_val_acc"] is None or row["discarded"] else f"{100 * row['best_val_acc']:.2f}%"
        status = f"discarded ({row['why']})" if row["discarded"] else row["status"]
        if result.best is not None and row["run"] == result.best["run"]:
            status += " *best*"
        seconds = "-" if row["train_seconds"] is None else f"{row['train_seconds']:.1f}"
        epochs = "-" if row["epochs"] is None else str(row["epochs"])
        cells.append([*(str(row["grid"][k]) for k in keys), status, val,
                      "-" if row["discarded"] else str(row["best_epoch"]), epochs, seconds])
    return headers, cells


def _search(args: argparse.Namespace) -> int:
    summary = api.tune_search(args.file, args.items, args.dir, args.trials, args.storage)
    print("trials: " + ", ".join(f"{n} {state}" for state, n in summary["states"].items()))
    if summary["best"]:
        best = summary["best"]
        print(f"best trial {best['number']}: val top-1 {100 * best['value']:.2f}%  {best['params']}")
        print(f"best run: {best['run_dir']}")
    for plot in summary["plots"]:
        print(f"wrote {plot}")
    print(f"storage: {summary['storage']}")
    if summary["interrupted"]:  # (the search has said so, with how to continue)
        return 128 + int(summary["signal"])  # 130 SIGINT, 143 SIGTERM
    return 0
