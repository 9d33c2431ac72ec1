"""`cnnlab compare-optimizers`, `optim-paths`, `lr-plot`: optimizers and schedules side by side."""

from __future__ import annotations

import argparse
from typing import Any

from .. import api
from .common import add_items, command, fmt, split_items, table


def register(sub: Any) -> None:
    compare = command(sub, "compare-optimizers", _compare, "train one model with several optimizers, plot the losses")
    add_items(compare, help_text="base config (default: convnet on fashion-mnist, 3 epochs, constant lr, no decay)")
    compare.add_argument("--optimizers", default="sgd,momentum,rmsprop,adam",
                         help="comma-separated names, optionally with a rate: sgd:0.05,adam (default: the lecture's)")
    compare.add_argument("--dir", default="runs/compare-optimizers", help="where the runs, table and plot go")
    compare.add_argument("--quiet", action="store_true", help="no per-epoch output")
    paths = command(sub, "optim-paths", _paths, "optimizer trajectories on 2-D surfaces (PNG and GIF)")
    paths.add_argument("--surface", default="all", help="saddle, rosenbrock, beale, quadratic or all")
    paths.add_argument("--optimizers", default="sgd,momentum,nesterov,rmsprop,adam",
                       help="comma-separated optimizer names (`cnnlab optimizers` lists them)")
    paths.add_argument("--lr", action="append", default=[], metavar="NAME=RATE", help="override one optimizer's rate")
    paths.add_argument("--steps", type=int, help="steps per path (default: per surface)")
    paths.add_argument("--out", default="runs/optim_paths", help="output folder (default runs/optim_paths)")
    lr_plot = command(sub, "lr-plot", _lr_plot, "draw the learning rate a config's schedule gives over training")
    add_items(lr_plot)
    lr_plot.add_argument("--out", default="runs/lr_schedule.png", help="PNG path (default runs/lr_schedule.png)")


def _compare(args: argparse.Namespace) -> int:
    config, overrides = split_items(args.items)
    specs = [s.strip() for s in args.optimizers.split(",") if s.strip()]
    result = api.compare_optimizers(specs, overrides, args.dir, config, args.quiet)
    first = result.rows[0]["optimizer"]
    rows = [(r["optimizer"], "" if r["optimizer"] == first else first, r["delta"], r["verdict"], f"{r['lr']:g}",
             r["status"], fmt(r["final_train_loss"], ".4f"), fmt(r["test_acc"], ".2%"), fmt(r["train_seconds"], ".1f"))
            for r in result.rows]
    table(("optimizer", "vs", "Δ test [95% CI]", "verdict", "lr", "status", "final train loss", "test acc", "train s"),
          rows)
    print(f"verdicts: each optimizer against {first}, one run each: McNemar's exact interval on the test images "
          "(these two trained networks), and the word '1 seed': one seed says nothing about the optimizers; run "
          "them as a study with seeds (studies/optimizers.yaml --seeds 0,1,2) for a verdict")
    print(f"wrote {result.plot} and {result.table}")
    return 0


def _paths(args: argparse.Namespace) -> int:
    names = [n.strip() for n in args.optimizers.split(",") if n.strip()]
    for picture in api.optim_paths(args.surface, names, api.parse_rates(args.lr), args.steps, args.out):
        ends = ", ".join(f"{n} ({x:.2f}, {y:.2f})" for n, (x, y) in picture.ends.items())
        print(f"{picture.surface}: wrote {picture.png} and {picture.gif}; end points: {ends}")
    return 0


def _lr_plot(args: argparse.Namespace) -> int:
    config, overrides = split_items(args.items)
    drawn = api.lr_plot(config, overrides, args.out)
    print(f"wrote {drawn['path']}: lr from {drawn['first']:g} (max {drawn['max']:g}) to {drawn['last']:g} over "
          f"{drawn['epochs']} epochs")
    return 0
