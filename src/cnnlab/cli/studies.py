"""`cnnlab study run|table|plot` and `cnnlab report`: a whole table from one file."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import api
from ..errors import ConfigError
from .common import add_mlflow, command, group, table


def register(sub: Any) -> None:
    study = group(sub, "study", "run a study file and tabulate/plot its runs", "studies")
    listing = command(study, "list", _list, "the studies that come with cnnlab: name, seed document, what each "
                      "asks, its runs and budget (each runs by name from any folder)")
    listing.set_defaults(items=[])
    show = command(study, "show", _show, "print a study file, comments included (cnnlab study show NAME > mine.yaml "
                   "to copy and edit it)")
    show.add_argument("name", metavar="NAME|STUDY.yaml", help="a study that comes with cnnlab, or a study file")
    run = command(study, "run", _run, "run every run of a study file (finished runs are skipped)")
    run.add_argument("file", metavar="NAME|STUDY.yaml",
                     help="a study that comes with cnnlab, by name (`cnnlab study list`), or a study file")
    run.add_argument("items", nargs="*", metavar="key=value", help="overrides applied to every run's base config")
    run.add_argument("--dir", help="study directory (default: runs/<study name>)")
    run.add_argument("--jobs", type=int, default=1, help="runs at once, as separate processes (default 1)")
    run.add_argument("--dry-run", action="store_true",
                     help="write nothing: print the runs and their predicted time, each distinct model, input, batch "
                          "and precision measured for a few steps on this machine (at --jobs' threads)")
    run.add_argument("--seeds", type=_seed_list, metavar="S,S,...",
                     help="the seeds of every row, instead of the file's seeds: or repeats: (e.g. 0,1,2)")
    run.add_argument("--shard", metavar="I/N", help="only runs I, I+N, I+2N, ... of the study (job arrays)")
    run.add_argument("--rerun-failed", action="store_true", help="run again the runs that failed")
    run.add_argument("--quiet", action="store_true", help="no per-epoch output from the runs")
    add_mlflow(run)
    verdict_arguments(run)
    run.add_argument("--until-decided", action="store_true",
                     help="after the planned seeds, add seeds to the rows whose verdict is 'within noise' or '1 seed' "
                          "(and to their reference rows), one round at a time, until each is decided; a "
                          "group-sequential test keeps --alpha over every look (docs/verdicts.md)")
    run.add_argument("--boundary", choices=("obrien-fleming", "pocock"), default="obrien-fleming",
                     help="with --until-decided: the sequential boundary (default obrien-fleming: the higher power "
                          "in docs/verdicts.md's table; pocock decides large effects with fewer seeds)")
    run.add_argument("--max-seeds", type=int, default=5, metavar="N",
                     help="with --until-decided: stop adding seeds to a row at N seeds (default 5)")
    worker = study.add_parser("worker")  # one run of a study in its own process (`study run --jobs N`)
    worker.add_argument("directory")
    worker.add_argument("name")
    worker.add_argument("config")
    worker.add_argument("--rerun-failed", action="store_true")
    worker.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    worker.set_defaults(handler=lambda args: api.study_worker(args.directory, args.name, args.config,
                                                              args.rerun_failed))
    tabulate = command(study, "table", _table, "one row per variation: metrics, mean ± std, Δ baseline")
    tabulate.add_argument("directory", metavar="STUDY_DIR", help="a study directory (runs/<study name>)")
    tabulate.add_argument("--seeds", type=_seed_list, metavar="S,S,...",
                          help="only these seeds' runs: how the table reads with fewer seeds (written to "
                               "table-seeds-S.csv/.md)")
    verdict_arguments(tabulate)
    plot = command(study, "plot", _plot, "curves of all variations, a bar chart of the final metric and a forest "
                                         "plot of the verdicts")
    plot.add_argument("directory", metavar="STUDY_DIR", help="a study directory")
    verdict_arguments(plot)
    plot.add_argument("--crossing", type=float, metavar="ERROR",
                      help="also plot training error with this line (e.g. 0.25, AlexNet figure 1) and print the "
                           "epoch each variation reaches it, and their ratios")
    power = command(study, "power", _power, "simulate studies through the verdict code: the false-positive rate and "
                                           "the power of a study of this kind")
    power.add_argument("--rows", type=int, default=3, help="rows compared with one reference (default 3)")
    power.add_argument("--seeds", type=int, default=3, help="seeds per row (default 3)")
    power.add_argument("--max-seeds", type=int, metavar="N", help="add seeds until decided, up to N (--until-decided)")
    power.add_argument("--boundary", choices=("obrien-fleming", "pocock"), default="obrien-fleming",
                       help="with --max-seeds: the sequential boundary (default obrien-fleming)")
    power.add_argument("--seed-sd", type=float, default=2.0, metavar="POINTS",
                       help="spread of a run's accuracy over seeds, in points (default 2; a study table's ± column)")
    power.add_argument("--effects", type=_point_list, default=[1.0, 2.0, 5.0], metavar="P,P,...",
                       help="true differences to simulate besides the null, in points (default 1,2,5)")
    power.add_argument("--test-images", type=int, default=10_000, help="test images (default 10000)")
    power.add_argument("--accuracy", type=float, default=80.0, metavar="PERCENT",
                       help="the reference's accuracy (default 80)")
    power.add_argument("--studies", type=int, default=10_000, help="simulated studies per effect (default 10000)")
    verdict_arguments(power)
    report = command(sub, "report", _report, "a self-contained HTML page of a study or a run")
    report.add_argument("directory", metavar="STUDY_DIR|RUN_DIR", help="a study or run directory")


def _run(args: argparse.Namespace) -> int:
    items = [*args.items, "train.mlflow=true", f"train.mlflow_uri={args.mlflow}"] if args.mlflow is not None \
        else args.items
    if args.mlflow_required:
        items = [*items, "train.mlflow=true", "train.mlflow_required=true"]
    study = api.plan_study(args.file, items, args.shard, args.seeds)
    directory = args.dir or f"runs/{study.name}"
    if args.dry_run:
        return _dry_run(study, args, directory)
    if study.mode == "greedy":
        print(f"study {study.name}: a greedy search of {len(study.stages)} stages into {directory}")
    else:
        part = f"{len(study.selected)} of {len(study.runs)} runs (shard {args.shard})" if args.shard else \
            f"{len(study.runs)} runs"
        print(f"study {study.name}: {part} ({len(study.variations)} variations) into {directory}")
    outcome = api.run_study(study, directory, args.jobs, args.rerun_failed, args.quiet,
                            until_decided=args.until_decided, max_seeds=args.max_seeds, alpha=args.alpha,
                            min_effect=args.min_effect, boundary=args.boundary)
    if outcome.interrupted:
        return 130
    print_table(directory, args.alpha, args.min_effect)
    return 0


def _dry_run(study: Any, args: argparse.Namespace, directory: str) -> int:
    """What `study run` with these arguments would cost (and refuse), printed; nothing is written."""
    jobs = args.jobs
    cost = api.predict_study(study, jobs, directory, args.rerun_failed, until_decided=args.until_decided,
                             max_seeds=args.max_seeds, alpha=args.alpha, min_effect=args.min_effect,
                             boundary=args.boundary)
    rows: dict[str, list[Any]] = {}
    for run in cost.pending:
        rows.setdefault(run.variation, []).append(run)
    if cost.finished:
        print(f"{len(cost.finished)} of {len(cost.runs)} runs already finished in {directory}: skipped, not costed")
    if not cost.pending:
        print(f"study {study.name}: nothing left to run; nothing was written")
    else:
        _cost_table(study, cost, rows, jobs)
    if args.until_decided:
        added, seconds = cost.until_decided_seconds(args.max_seeds)
        print(f"--until-decided then adds seeds only to rows left undecided: at most {added} more run(s), "
              f"~{human_seconds(seconds)} (every row up to --max-seeds {args.max_seeds})")
    return 0


def _cost_table(study: Any, cost: Any, rows: dict[str, list[Any]], jobs: int) -> None:
    kind = "every stage's alternatives, costed on the base" if study.mode == "greedy" else f"{len(rows)} variations"
    print(f"study {study.name}: {len(cost.pending)} runs ({kind}), predicted on {cost.cpu} ({cost.threads} thread(s) "
          "per run) from a few measured steps of each distinct model, input, batch and precision:")
    table(("variation", "runs", "steps/run", "step ms", "train s", "+ eval + data s"),
          [(name, str(len(runs)), f"{runs[0].steps:,}", f"{runs[0].step_seconds * 1e3:.1f}",
            f"{sum(r.train_seconds for r in runs):,.0f}", f"{sum(r.seconds for r in runs):,.0f}")
           for name, runs in rows.items()])
    parallel = f"; with --jobs {jobs}: ~{human_seconds(cost.wall_seconds)} of wall time" if jobs > 1 else ""
    print(f"total: ~{human_seconds(cost.seconds)} of computing{parallel} (process start-up, plots and tables not "
          "included); nothing was written")


def human_seconds(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:,.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:,.1f} min"
    return f"{seconds / 3600:,.1f} h"


def _point_list(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--effects takes points of accuracy separated by commas (e.g. 1,2,5), not "
                                         f"'{text}'") from None


def _power(args: argparse.Namespace) -> int:
    result = api.study_power(args.rows, args.seeds, args.max_seeds, args.seed_sd, args.effects, args.studies,
                             args.test_images, args.accuracy, args.boundary, args.alpha, args.min_effect)
    print(f"simulated {args.studies:,} studies per effect: {result.setting.describe().split(', effect')[0]}")
    table(result.headers, result.rows)
    for note in result.notes:
        print(f"note: {note}")
    return 0


def _list(args: argparse.Namespace) -> int:
    entries = api.packaged_studies()
    table(["name", "seed document", "what it asks", "runs", "budget"],
          [[e.name, e.source, e.asks, e.runs, e.budget] for e in entries])
    print("run one by name from any folder: cnnlab study run NAME [key=value ...] (a search: cnnlab tune search "
          "NAME); copy one to edit: cnnlab study show NAME > mine.yaml")
    return 0


def _show(args: argparse.Namespace) -> int:
    sys.stdout.write(api.study_text(args.name))
    return 0


def _seed_list(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds takes integers separated by commas (e.g. 0,1,2), not '{text}'") \
            from None
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"--seeds lists a seed twice: '{text}'")
    return seeds


def verdict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--alpha", type=float, default=0.05,
                        help="significance level of the verdicts, after Holm's correction (default 0.05)")
    parser.add_argument("--min-effect", type=float, default=0.5, metavar="POINTS",
                        help="a difference smaller than this many points of accuracy counts as equivalent "
                             "(default 0.5)")


def print_table(directory: str, alpha: float = 0.05, min_effect: float = 0.5,
                seeds: list[int] | None = None) -> None:
    result = api.study_table(directory, alpha, min_effect, seeds)
    table(result.headers, result.rows)
    for note in result.notes:
        print(f"note: {note}")
    print(f"wrote {result.csv} and {result.markdown}")


def _table(args: argparse.Namespace) -> int:
    print_table(args.directory, args.alpha, args.min_effect, args.seeds)
    return 0


def _plot(args: argparse.Namespace) -> int:
    if args.crossing is not None and not 0 < args.crossing < 1:  # before anything is redrawn
        raise ConfigError(f"--crossing must be an error rate between 0 and 1 (e.g. 0.25), got {args.crossing}")
    curves, bars, forest = api.study_plot(args.directory, args.alpha, args.min_effect)
    print(f"wrote {curves}, {bars} and {forest}")
    if args.crossing is not None:
        path, reached = api.error_crossing(args.directory, args.crossing)
        for variation, epoch in reached.items():
            said = ("never reached" if epoch is None else "reached within epoch 1 (below it at the first "
                    "measurement)" if epoch == 0 else f"at epoch {epoch:.1f}")
            print(f"{variation}: {args.crossing:.0%} training error {said}")
        known = [e for e in reached.values() if e is not None]
        if known and min(known) == 0:
            print("no ratio: a curve crossed within its first epoch (use a lower --crossing, or shorter epochs "
                  "with data.train_limit)")
        elif known:
            for variation, epoch in reached.items():
                if epoch is not None and epoch > min(known):
                    print(f"{variation} needed {epoch / min(known):.1f}x the epochs of the fastest")
        for variation, published in api.crossing_references(args.directory).items():
            print(f"{variation}: published {published}")
        print(f"wrote {path}")
    return 0


def _report(args: argparse.Namespace) -> int:
    print(f"wrote {api.report(args.directory)}")
    return 0
