"""`cnnlab check` and `cnnlab lr-find`: look at a run before training it."""

from __future__ import annotations

import argparse
from typing import Any

from .. import api
from .common import add_device, add_items, command, split_items, table


def register(sub: Any) -> None:
    check = command(sub, "check", _check,
                    "check a run before believing it: loss at initialisation against ln C, labels in range, class "
                    "balance, normalised input statistics, images shared between splits; --overfit: learn one batch")
    add_items(check)
    _data_options(check)
    check.add_argument("--overfit", action="store_true",
                       help="also train on one fixed batch and fail unless it reaches ~100%% training accuracy "
                            "(Karpathy's 'overfit one batch'); nothing is saved")
    check.add_argument("--steps", type=int, default=200, help="most steps of the overfit test (default 200)")
    check.add_argument("--no-leakage", action="store_true",
                       help="skip the search for images shared between splits (it decodes every image file of a "
                            "folder dataset)")
    check.add_argument("--examples", type=int, default=5, help="images named per kind of duplicate (default 5)")
    check.add_argument("--strict", action="store_true", help="exit 1 on a warning too, not only on a failure")

    finder = command(sub, "lr-find", _lr_find,
                     "learning-rate range test (Smith 2017): loss against an exponentially growing lr, a suggestion, "
                     "and RUNS_DIR/lr-find/NAME/lr_find.png and .csv; the run's weights are not touched")
    add_items(finder)
    _data_options(finder)
    finder.add_argument("--start", type=float, default=1e-7, help="first learning rate (default 1e-7)")
    finder.add_argument("--end", type=float, default=10.0, help="last learning rate (default 10)")
    finder.add_argument("--steps", type=int, default=100, help="mini-batches from --start to --end (default 100)")
    finder.add_argument("--rule", choices=tuple(api.LR_FIND_RULES), default=api.LR_FIND_RULE,
                        help=f"which reading of the curve is the suggestion (default {api.LR_FIND_RULE}, measured "
                             "best: docs/how-to/checks.md); the others are printed too")
    finder.add_argument("--name", help="folder name under RUNS_DIR/lr-find (default: model-data-time)")
    finder.add_argument("--runs-dir", default="runs", help="where runs go (default: runs)")


def _data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-root", help="where datasets are (else $CNNLAB_DATA, then the user cache)")
    add_device(parser, "auto")


def _keywords(args: argparse.Namespace) -> dict[str, Any]:
    keywords: dict[str, Any] = {"device": args.device} if args.device else {}
    if args.data_root is not None:
        keywords["data.root"] = args.data_root
    return keywords


def _check(args: argparse.Namespace) -> int:
    config, overrides = split_items(args.items)
    report = api.check(config, overrides, overfit=args.overfit, overfit_steps=args.steps,
                       leakage=not args.no_leakage, examples=args.examples, **_keywords(args))
    table(["check", "status", "finding"],
          [[c.name.replace("_", " "), c.status, c.summary] for c in report.checks])
    for found in report.checks:
        for kind, lines in (found.details.get("examples") or {}).items():
            print(f"{kind}:")
            for line in lines:
                print(f"  {line}")
    failed, warned = len(report.failed), len(report.warnings)
    print(f"{failed} failed, {warned} warning{'' if warned == 1 else 's'}, "
          f"{len(report.checks) - failed - warned} ok")
    return 1 if failed or (args.strict and warned) else 0


def _lr_find(args: argparse.Namespace) -> int:
    config, overrides = split_items(args.items)
    found = api.lr_find(config, overrides, start=args.start, end=args.end, steps=args.steps, name=args.name,
                        runs_dir=args.runs_dir, rule=args.rule, **_keywords(args))
    hint = found.suggestion
    print(f"range test: {len(found.test.rates)} steps from {args.start:g}; {found.test.stopped}")
    if hint.candidates:
        print(f"  minimum of the smoothed loss {hint.minimum_loss:.4g} at lr {hint.minimum_lr:.3g}")
    for rule, lr in hint.alternatives.items():
        print(f"  {rule}: lr {lr:g}, {api.LR_FIND_RULES[rule]}")
    if hint.lr is None:
        print(f"no suggestion: {hint.why}")
    else:
        print(f"suggested lr {hint.lr:g}: {hint.how}")
        if hint.rule == api.LR_FIND_RULE:
            print(f"note: {api.LR_FIND_MEASURED}")
    if found.note:
        print(f"note: {found.note}")
    print(f"wrote {found.png} and {found.csv}")
    return 0 if hint.lr is not None else 1
