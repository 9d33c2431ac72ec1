"""The `cnnlab` command: parse -> config -> call the Python API -> print. Nothing else lives here.

Exit codes: 0 done, 2 user mistake (bad config, missing data; one message, no traceback unless --debug),
3 the run diverged (NaN/Inf loss), 130/143 interrupted by SIGINT/SIGTERM (resume with --resume).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import api
from .errors import CnnlabError, ConfigError
from .io import DISK_ERRORS, storage_error


def run() -> None:
    """The `cnnlab` program: main(), then exit without the interpreter's teardown. Tearing down torch
    takes ~1 s (measured: `import torch` alone, torch 2.14), which a command that has written and closed
    every file does not need; it is what made `cnnlab train` take 2 s to exit after SIGTERM."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # `cnnlab train --name x epochs=3`: overrides may also follow the options
    overrides = all("=" in e and not e.startswith("-") for e in extra)
    if extra and isinstance(getattr(args, "items", None), list) and overrides:
        args.items += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except CnnlabError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # the disk said no somewhere a library wrote for us: still one message and exit 2
        if args.debug or exc.errno not in DISK_ERRORS:
            raise
        print(f"error: {storage_error(exc, exc.filename or 'a file', 'use')}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cnnlab", description="Build, train, evaluate and compare CNNs.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for user errors too")
    parser.add_argument("--version", action="version", version=f"cnnlab {_version()}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    train = _command(sub, "train", _train, "train one run (config file and/or key=value overrides)")
    train.add_argument("items", nargs="*", metavar="CONFIG.yaml|key=value",
                       help="an optional YAML config, then overrides such as model=convnet epochs=15 lr=0.1")
    train.add_argument("--name", help="run directory name under --runs-dir (default: model-data-time)")
    train.add_argument("--runs-dir", default="runs", help="where run directories go (default: runs)")
    train.add_argument("--data-root", help="where datasets are (else $CNNLAB_DATA, then the user cache)")
    train.add_argument("--device", help="auto (default), cpu, cuda, cuda:N or mps")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint")
    train.add_argument("--checkpoint", default="last", choices=("last", "previous"),
                       help="with --resume: continue from the last checkpoint (default) or the one before it")
    train.add_argument("--allow-config-change", action="store_true", help="resume even if the config changed")
    train.add_argument("--overwrite", action="store_true", help="replace an existing run of the same --name")
    train.add_argument("--weights", metavar="FILE",
                       help="start from these weights (a cnnlab checkpoint, safetensors or a torch state dict)")
    train.add_argument("--skip-bad", action="store_true",
                       help="train without image files that fail to decode (listed in run.json) instead of stopping")
    train.add_argument("--quiet", action="store_true", help="no progress output")

    evaluate = _command(sub, "eval", _eval, "evaluate a run: loss, top-1/top-5, per-class, confusion matrix")
    evaluate.add_argument("run_dir", metavar="RUN_DIR")
    evaluate.add_argument("--split", choices=("test", "val"), default="test")
    evaluate.add_argument("--checkpoint", default="auto",
                          help="best, last, a checkpoint file, or auto (default: the weights of the run's test score)")
    evaluate.add_argument("--device", help="auto, cpu, cuda, mps (default: the run's)")

    predict = _command(sub, "predict", _predict, "top-5 labels with probabilities for image files")
    predict.add_argument("run_dir", metavar="RUN_DIR")
    predict.add_argument("images", nargs="+", metavar="IMAGE")
    predict.add_argument("-k", type=int, default=5, help="how many labels per image (default 5)")
    predict.add_argument("--checkpoint", default="auto", help="best, last, a file, or auto (as eval)")

    models = _command(sub, "models", _models, "list the registered models with parameters and FLOPs")
    models.add_argument("pattern", nargs="?", default="*", help="shell pattern, e.g. 'resnet*'")

    summary = _command(sub, "summary", _summary, "layers, output shapes, parameters and FLOPs of a model")
    summary.add_argument("model")
    summary.add_argument("options", nargs="*", metavar="key=value", help="model options, e.g. batch_norm=true")
    summary.add_argument("--input", help="CxHxW, e.g. 3x32x32 (default: the model's)")
    summary.add_argument("--classes", type=int, help="number of classes (default: the model's)")

    _command(sub, "datasets", _datasets, "list the datasets cnnlab can read")
    _data_commands(sub)
    _viz_commands(sub)
    _optim_commands(sub)
    _study_commands(sub)
    _tune_commands(sub)
    _transfer_commands(sub)
    _command(sub, "optimizers", _optimizers, "list the optimizers and their options")
    show = _command(sub, "config", _config, "print the resolved config (defaults + file + overrides)")
    show.add_argument("items", nargs="*", metavar="CONFIG.yaml|key=value")
    return parser


def _data_commands(sub: Any) -> None:
    data = sub.add_parser("data", help="inspect, check and download datasets", description="datasets")
    data_sub = data.add_subparsers(title="data commands", metavar="COMMAND")
    info = _command(data_sub, "info", _data_info, "counts per split and class, image sizes, pixel mean/std")
    info.add_argument("name", metavar="NAME")
    info.add_argument("items", nargs="*", metavar="key=value", help="config overrides, e.g. data.root=DIR")
    show = _command(data_sub, "show", _data_show, "a PNG grid of samples with their labels")
    show.add_argument("name", metavar="NAME")
    show.add_argument("items", nargs="*", metavar="key=value")
    show.add_argument("--split", choices=("train", "val", "test"), default="train")
    show.add_argument("--augment", action="store_true", help="show training images after augmentation")
    show.add_argument("-n", type=int, default=32, help="how many images (default 32)")
    show.add_argument("--out", help="PNG path (default NAME_SPLIT.png)")
    verify = _command(data_sub, "verify", _data_verify, "check every image file; exit 1 if any is bad")
    verify.add_argument("target", metavar="ROOT|NAME", help="an image folder tree, or a dataset name")
    verify.add_argument("items", nargs="*", metavar="key=value")
    download = _command(data_sub, "download", _data_download, "download, verify and unpack a dataset")
    download.add_argument("name", metavar="NAME")
    download.add_argument("--root", help="data root (default: $CNNLAB_DATA, then the user cache)")
    download.add_argument("--mirror", help="base URL to fetch the files from instead of the official ones")


def _study_commands(sub: Any) -> None:
    study = sub.add_parser("study", help="run a study file and tabulate/plot its runs", description="studies")
    study_sub = study.add_subparsers(title="study commands", metavar="COMMAND")
    run = _command(study_sub, "run", _study_run, "run every run of a study file (finished runs are skipped)")
    run.add_argument("file", metavar="STUDY.yaml")
    run.add_argument("items", nargs="*", metavar="key=value", help="overrides applied to every run's base config")
    run.add_argument("--dir", help="study directory (default: runs/<study name>)")
    run.add_argument("--jobs", type=int, default=1, help="runs at once, as separate processes (default 1)")
    run.add_argument("--rerun-failed", action="store_true", help="run again the runs that failed")
    run.add_argument("--quiet", action="store_true")
    worker = study_sub.add_parser("worker")  # one run of a study, in its own process (`study run --jobs N`)
    worker.add_argument("directory")
    worker.add_argument("name")
    worker.add_argument("config")
    worker.add_argument("--rerun-failed", action="store_true")
    worker.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    worker.set_defaults(handler=_study_worker)
    table = _command(study_sub, "table", _study_table, "one row per variation: metrics, mean ± std, Δ baseline")
    table.add_argument("directory", metavar="STUDY_DIR")
    plot = _command(study_sub, "plot", _study_plot, "curves of all variations and a bar chart of the final metric")
    plot.add_argument("directory", metavar="STUDY_DIR")
    report = _command(sub, "report", _report, "a self-contained HTML page of a study or a run")
    report.add_argument("directory", metavar="STUDY_DIR|RUN_DIR")


def _study_run(args: argparse.Namespace) -> int:
    from .experiments.runner import run_study
    from .experiments.study import load_study

    study = load_study(args.file, args.items)
    directory = args.dir or f"runs/{study.name}"
    print(f"study {study.name}: {len(study.runs)} runs ({len(study.variations)} variations) into {directory}")
    outcome = run_study(study, directory, args.jobs, args.rerun_failed, args.quiet)
    _plot_runs(directory)
    if outcome.interrupted:
        return outcome.exit_code
    _print_study_table(directory)
    return 0


def _plot_runs(directory: str) -> None:
    for run in Path(directory).iterdir():
        api.draw_curves(run)


def _study_worker(args: argparse.Namespace) -> int:
    from .config import load_config
    from .experiments.runner import BUSY, run_one
    from .experiments.study import RunSpec
    from .runs import RunDir

    config = load_config(args.config)
    action, status = run_one(RunSpec(args.name, args.name, config.seed, {}, config), Path(args.directory),
                             args.rerun_failed, quiet=True)
    if action == BUSY:
        return 75
    record = RunDir(Path(args.directory) / args.name).record()
    if record is not None and status == "interrupted":
        return 130
    return 3 if status == "diverged" else 0


def _print_study_table(directory: str) -> None:
    from pathlib import Path

    from .experiments.study import read_plan
    from .experiments.table import aggregate, formatted, study_rows, write_tables

    metric = read_plan(Path(directory)).get("metric", "test_acc")
    table = aggregate(study_rows(directory), metric)
    headers, rows = formatted(table, metric)
    _table(headers, rows)
    csv_path, md_path = write_tables(table, Path(directory), metric)
    print(f"wrote {csv_path} and {md_path}")


def _study_table(args: argparse.Namespace) -> int:
    _print_study_table(args.directory)
    return 0


def _study_plot(args: argparse.Namespace) -> int:
    from .viz.study import plot_study

    curves, bars = plot_study(args.directory)
    print(f"wrote {curves} and {bars}")
    return 0


def _report(args: argparse.Namespace) -> int:
    print(f"wrote {api.report(args.directory)}")
    return 0


def _tune_commands(sub: Any) -> None:
    tune = sub.add_parser("tune", help="hyperparameter tuning: the grid protocol or an Optuna search",
                          description="hyperparameter tuning")
    tune_sub = tune.add_subparsers(title="tune commands", metavar="COMMAND")
    grid = _command(tune_sub, "grid", _tune_grid,
                    "train every grid point with validation, discard diverged ones, retrain the best on "
                    "train+val for its best epoch count, report test accuracy")
    grid.add_argument("items", nargs="*", metavar="CONFIG.yaml|key=value")
    grid.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                      help="a grid axis, repeatable: --grid lr=0.1,0.01 --grid schedule.step_size=10,20")
    grid.add_argument("--dir", help="tuning directory (default: runs/tune_grid)")
    grid.add_argument("--jobs", type=int, default=1, help="grid points at once, as separate processes")
    search = _command(tune_sub, "search", _tune_search, "Optuna TPE search with pruning over a YAML search space")
    search.add_argument("file", metavar="SEARCH.yaml")
    search.add_argument("items", nargs="*", metavar="key=value", help="overrides applied to every trial")
    search.add_argument("--dir", help="search directory (default: runs/<search name>)")
    search.add_argument("--trials", type=int, help="total number of trials (overrides the file)")
    search.add_argument("--storage", help="Optuna storage URL (default sqlite:///DIR/optuna.db)")


def _transfer_commands(sub: Any) -> None:
    ensemble = _command(sub, "ensemble", _ensemble, "average the predictions of several runs on one split")
    ensemble.add_argument("runs", nargs="+", metavar="RUN_DIR")
    ensemble.add_argument("--split", default="test", choices=("test", "val"))
    ensemble.add_argument("--combine", default="softmax", choices=("softmax", "logits", "vote"),
                          help="average probabilities (default), average logits, or majority vote")
    ensemble.add_argument("--flip", action="store_true", help="test-time augmentation: also the mirrored images")
    ensemble.add_argument("--device")
    ensemble.add_argument("--out", help="write the result as JSON here")
    features = _command(sub, "features", _features,
                        "a trained net as fixed feature extractor: export penultimate vectors, fit logistic regression")
    features.add_argument("items", nargs="*", metavar="CONFIG.yaml|key=value", help="the data to extract from")
    features.add_argument("--weights", required=True, metavar="RUN_DIR|FILE", help="the network's weights")
    features.add_argument("--out", required=True, metavar="DIR")
    features.add_argument("--no-probe", action="store_true", help="only export, no logistic regression")


def _ensemble(args: argparse.Namespace) -> int:
    from .experiments.ensemble import run_ensemble, write_result

    result = run_ensemble(args.runs, args.split, args.combine, args.flip, args.device)
    rows = [[m["run"], f"{100 * m['acc']:.2f}%", f"{100 * m['top5']:.2f}%"] for m in result.members]
    name = f"ensemble ({args.combine}{', flip' if args.flip else ''})"
    rows.append([name, f"{100 * result.ensemble['acc']:.2f}%", f"{100 * result.ensemble['top5']:.2f}%"])
    _table(["member", f"{args.split} top-1", "top-5"], rows)
    if args.out:
        write_result(result, Path(args.out))
        print(f"wrote {args.out}")
    return 0


def _features(args: argparse.Namespace) -> int:
    from .experiments.features import export_features, linear_probe

    config, overrides = split_items(args.items)
    paths = export_features(api.make_config(config, overrides), args.weights, args.out)
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    if not args.no_probe:
        result = linear_probe(args.out)
        accs = "  ".join(f"{name} {100 * acc:.2f}%" for name, acc in result.accuracy.items())
        print(f"logistic regression on {result.dimensions}-d features (C={result.c:g}): {accs}")
    return 0


def _tune_grid(args: argparse.Namespace) -> int:
    from .experiments.tune_grid import grid_table, parse_grid_options, plan_grid, run_grid

    config, overrides = split_items(args.items)
    study = plan_grid(config, overrides, parse_grid_options(args.grid), "tune_grid")
    directory = args.dir or "runs/tune_grid"
    print(f"tune grid: {len(study.runs)} points into {directory}")
    result = run_grid(study, directory, jobs=args.jobs)
    _table(*grid_table(result))
    if result.interrupted:
        print("interrupted; run the same command again to continue")
        return 130
    if result.final is None:
        print("no grid point finished without diverging: nothing to retrain", file=sys.stderr)
        return 3
    test = result.final["test"] or {}
    print(f"best {result.best['grid']} (val top-1 {100 * result.best['best_val_acc']:.2f}% at epoch "
          f"{result.best['best_epoch']}); retrained on train+val for {result.final['epochs']} epochs: "
          f"test top-1 {100 * test.get('acc', 0):.2f}%  top-5 {100 * test.get('top5', 0):.2f}%")
    print(f"wrote {result.directory / 'tune.json'}; final run: {result.final['run']}")
    return 0


def _tune_search(args: argparse.Namespace) -> int:
    import dataclasses

    from .experiments.tune_search import load_search, run_search, storage_url, summarize

    spec = load_search(args.file, args.items)
    if args.trials:
        spec = dataclasses.replace(spec, trials=args.trials)
    if args.storage:
        spec = dataclasses.replace(spec, storage=args.storage)
    directory = Path(args.dir or f"runs/{spec.name}")
    study = run_search(spec, directory)
    summary = summarize(study, directory)
    print("trials: " + ", ".join(f"{n} {state}" for state, n in summary["states"].items()))
    if summary["best"]:
        best = summary["best"]
        print(f"best trial {best['number']}: val top-1 {100 * best['value']:.2f}%  {best['params']}")
        print(f"best run: {best['run_dir']}")
    for plot in summary["plots"]:
        print(f"wrote {plot}")
    print(f"storage: {storage_url(spec, directory)}")
    return 0


def _optim_commands(sub: Any) -> None:
    compare = _command(sub, "compare-optimizers", _compare, "train one model with several optimizers, plot the losses")
    compare.add_argument("items", nargs="*", metavar="CONFIG.yaml|key=value",
                         help="base config (default: convnet on fashion-mnist, 3 epochs, constant lr, no decay)")
    compare.add_argument("--optimizers", default="sgd,momentum,rmsprop,adam",
                         help="comma-separated names, optionally with a rate: sgd:0.05,adam (default: the lecture's)")
    compare.add_argument("--dir", default="runs/compare-optimizers", help="where the runs, table and plot go")
    compare.add_argument("--quiet", action="store_true")
    paths = _command(sub, "optim-paths", _optim_paths, "optimizer trajectories on 2-D surfaces (PNG and GIF)")
    paths.add_argument("--surface", default="all", help="saddle, rosenbrock, beale, quadratic or all")
    paths.add_argument("--optimizers", default="sgd,momentum,nesterov,rmsprop,adam")
    paths.add_argument("--lr", action="append", default=[], metavar="NAME=RATE", help="override one optimizer's rate")
    paths.add_argument("--steps", type=int, help="steps per path (default: per surface)")
    paths.add_argument("--out", default="optim_paths", help="output folder")
    lr_plot = _command(sub, "lr-plot", _lr_plot, "draw the learning rate a config's schedule gives over training")
    lr_plot.add_argument("items", nargs="*", metavar="CONFIG.yaml|key=value")
    lr_plot.add_argument("--out", default="lr_schedule.png")


def _compare(args: argparse.Namespace) -> int:
    config, overrides = split_items(args.items)
    specs = [s.strip() for s in args.optimizers.split(",") if s.strip()]
    result = api.compare_optimizers(specs, overrides, args.dir, config, args.quiet)
    rows = [(r["optimizer"], f"{r['lr']:g}", r["status"], _fmt(r["final_train_loss"], ".4f"),
             _fmt(r["test_acc"], ".2%"), _fmt(r["train_seconds"], ".1f")) for r in result.rows]
    _table(("optimizer", "lr", "status", "final train loss", "test acc", "train s"), rows)
    print(f"wrote {result.plot} and {result.table}")
    return 0


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _optim_paths(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .experiments.paths import SURFACES, learning_rate, optimizer_paths
    from .viz.paths import animate_paths, plot_paths

    rates = {}
    for item in args.lr:
        name, _, value = item.partition("=")
        try:
            rates[name] = float(value)
        except ValueError:
            raise ConfigError(f"--lr '{item}' must look like NAME=RATE, e.g. adam=0.05") from None
    names = [n.strip() for n in args.optimizers.split(",") if n.strip()]
    surfaces = list(SURFACES) if args.surface == "all" else [args.surface]
    for surface_name in surfaces:
        paths = optimizer_paths(surface_name, names, rates, args.steps)
        surface = SURFACES[surface_name]
        used = {n: learning_rate(surface, n, rates) for n in names}
        png = Path(args.out) / f"{surface_name}.png"
        plot_paths(surface, paths, used, png)
        gif = animate_paths(surface, paths, used, Path(args.out) / f"{surface_name}.gif")
        ends = ", ".join(f"{n} ({p[-1, 0]:.2f}, {p[-1, 1]:.2f})" for n, p in paths.items())
        print(f"{surface_name}: wrote {png} and {gif}; end points: {ends}")
    return 0


def _lr_plot(args: argparse.Namespace) -> int:
    from .viz.lr import plot_schedule, schedule_points

    config, overrides = split_items(args.items)
    run_config = api.make_config(config, overrides)
    plot_schedule(run_config, args.out)
    points, rates = schedule_points(run_config)
    print(f"wrote {args.out}: lr from {rates[0]:g} (max {rates.max():g}) to {rates[-1]:g} over "
          f"{run_config.train.epochs} epochs")
    return 0


def _viz_commands(sub: Any) -> None:
    viz = sub.add_parser("viz", help="pictures that explain a trained run", description="explain a run")
    viz_sub = viz.add_subparsers(title="viz commands", metavar="COMMAND")
    filters = _command(viz_sub, "filters", _viz_filters, "the kernels of a convolution as an image grid")
    filters.add_argument("run_dir", metavar="RUN_DIR")
    filters.add_argument("--layer", help="layer name, e.g. conv1 or features.conv2 (default: the first conv)")
    filters.add_argument("--checkpoint", default="auto")
    features = _command(viz_sub, "features", _viz_features, "the feature maps of a layer for one image")
    features.add_argument("run_dir", metavar="RUN_DIR")
    features.add_argument("image", metavar="IMAGE")
    features.add_argument("--layer", help="layer name (default: the first conv)")
    features.add_argument("--checkpoint", default="auto")
    predictions = _command(viz_sub, "predictions", _viz_predictions, "test images with top-5 probability bars")
    predictions.add_argument("run_dir", metavar="RUN_DIR")
    predictions.add_argument("--n", type=int, default=8, help="how many images (default 8)")
    predictions.add_argument("--split", choices=("test", "val"), default="test")
    predictions.add_argument("--checkpoint", default="auto")


def _viz_filters(args: argparse.Namespace) -> int:
    from . import explain

    print(f"wrote {explain.filters(args.run_dir, args.layer, args.checkpoint)[1]}")
    return 0


def _viz_features(args: argparse.Namespace) -> int:
    from . import explain

    print(f"wrote {explain.features(args.run_dir, args.image, args.layer, args.checkpoint)[1]}")
    return 0


def _viz_predictions(args: argparse.Namespace) -> int:
    from . import explain

    print(f"wrote {explain.predictions(args.run_dir, args.n, args.split, args.checkpoint)[1]}")
    return 0


def _command(sub: Any, name: str, handler: Any, help_text: str) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help_text, description=help_text)
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    parser.set_defaults(handler=handler)
    return parser


def _version() -> str:
    from . import __version__

    return __version__


def split_items(items: Sequence[str]) -> tuple[str | None, list[str]]:
    """Positional words: at most one config file (no '='), the rest key=value overrides."""
    files = [item for item in items if "=" not in item]
    if len(files) > 1:
        raise ConfigError(f"give at most one config file, got {', '.join(files)} (overrides look like key=value)")
    return (files[0] if files else None), [item for item in items if "=" in item]


# ------------------------------------------------------------------------------------------ handlers
def _train(args: argparse.Namespace) -> int:
    config, overrides = split_items(args.items)
    keywords: dict[str, Any] = {"device": args.device} if args.device else {}
    if args.skip_bad:
        keywords["data.skip_bad"] = True
    if args.weights:
        keywords["model.weights"] = args.weights
    result = api.train(config, overrides, name=args.name, runs_dir=args.runs_dir, resume=args.resume,
                       checkpoint=args.checkpoint, allow_config_change=args.allow_config_change,
                       overwrite=args.overwrite,
                       quiet=args.quiet, data_root=args.data_root, **keywords)
    _print_result(result)
    return result.exit_code


def _print_result(result: Any) -> None:
    if result.status in ("completed", "stopped_early") and result.test is not None:
        test = result.test
        print(f"{result.status}: {result.reason}")
        print(f"test accuracy {100 * test['acc']:.2f}%  top-5 {100 * test['top5']:.2f}%  loss {test['loss']:.4f}"
              f"  ({test['count']} images)")
        print(f"training {result.train_seconds:.1f}s at {result.images_per_second:,.0f} img/s "
              f"(wall {result.seconds:.1f}s); best epoch {result.best_epoch}")
    elif result.status == "diverged":
        print(f"diverged: {result.reason}", file=sys.stderr)
    elif result.status == "interrupted":
        print(f"interrupted: {result.reason}. Continue with: cnnlab train --resume {result.run_dir}", file=sys.stderr)
    print(f"run directory: {result.run_dir}")


def _eval(args: argparse.Namespace) -> int:
    report = api.evaluate(args.run_dir, split=args.split, checkpoint=args.checkpoint, device=args.device)
    print(f"{args.split}: loss {report['loss']:.4f}  top-1 {100 * report['acc']:.2f}%  "
          f"top-5 {100 * report['top5']:.2f}%  ({report['count']} images, {report['checkpoint']} checkpoint)")
    width = max(len(name) for name in report["per_class"])
    for name, acc in report["per_class"].items():
        print(f"  {name:<{width}}  {'-' if acc is None else f'{100 * acc:6.2f}%'}")
    print(f"wrote {args.run_dir}/eval_{args.split}.json, confusion_{args.split}.csv, "
          f"plots/confusion_{args.split}.png")
    return 0


def _predict(args: argparse.Namespace) -> int:
    for item in api.predict(args.run_dir, args.images, k=args.k, checkpoint=args.checkpoint):
        print(item["image"])
        for label, prob in item["top"]:
            print(f"  {100 * prob:6.2f}%  {label}")
    return 0


def _models(args: argparse.Namespace) -> int:
    from .models import MODELS
    from .models.summary import describe, human

    rows = []
    for name in MODELS.names(args.pattern):
        info = MODELS.get(name)
        summary = describe(name)
        rows.append((name, human(summary.parameters), "x".join(map(str, info.input_size)),
                     human(summary.flops), info.description))
    if not rows:
        raise ConfigError(f"no model matches '{args.pattern}'; `cnnlab models` lists them all")
    _table(("model", "params", "input", "FLOPs", "description"), rows)
    return 0


def _summary(args: argparse.Namespace) -> int:
    from .models.summary import describe, human

    input_shape = _parse_shape(args.input) if args.input else None
    summary = describe(args.model, args.options, input_shape, args.classes)
    rows = [(r.name, r.kind, "x".join(map(str, r.output_shape)), f"{r.parameters:,}", human(r.flops))
            for r in summary.rows]
    _table(("layer", "type", "output", "params", "FLOPs"), rows)
    print(f"input {'x'.join(map(str, summary.input_shape))}: {summary.parameters:,} parameters "
          f"({summary.trainable_parameters:,} trainable), {human(summary.flops)} FLOPs per image forward "
          "(1 multiply-add = 2 FLOPs)")
    return 0


def _parse_shape(text: str) -> tuple[int, int, int]:
    try:
        parts = tuple(int(p) for p in text.lower().split("x"))
    except ValueError:
        parts = ()
    if len(parts) != 3 or min(parts) <= 0:
        raise ConfigError(f"--input must look like CxHxW (for example 3x32x32), got '{text}'")
    return parts  # type: ignore[return-value]


def _datasets(args: argparse.Namespace) -> int:
    from .data import DATASETS

    rows = []
    for name in DATASETS:
        info = DATASETS.get(name)
        shape = "x".join(map(str, info.shape)) if info.shape[1] else f"{info.shape[0]}x*x* (files)"
        rows.append((name, shape, str(info.num_classes or "any"), info.description))
    _table(("dataset", "shape", "classes", "description"), rows)
    return 0


def _data_config(name: str, items: Sequence[str]):
    return api.make_config(None, [f"data={name}", *items])


def _data_info(args: argparse.Namespace) -> int:
    from .data.inspect import class_counts, image_sizes, pixel_stats
    from .train import splits_of

    splits = splits_of(_data_config(args.name, ["data.skip_bad=true", *args.items]))
    spec = splits.spec
    sizes = image_sizes(splits.train)
    mean, std = pixel_stats(splits)
    print(f"dataset {spec.dataset} from {spec.source}")
    print(f"splits: train {spec.sizes['train']:,}  val {spec.sizes['val']:,}  test {spec.sizes['test']:,}; "
          f"{spec.num_classes} classes; model input {spec.channels}x{spec.image_size}x{spec.image_size}")
    if spec.native_size:
        print(f"images: {spec.native_size}x{spec.native_size} ({spec.resize} to {spec.image_size}x{spec.image_size})")
    else:
        print(f"image sizes (train, min/median/max): width {sizes['width']}, height {sizes['height']}")
    print(f"pixel mean (train, [0,1] units): {[round(m, 4) for m in mean]}  std: {[round(v, 4) for v in std]}")
    counts = class_counts(splits)
    _table(("class", "train", "val", "test"), [(name, *map(str, c.values())) for name, c in counts.items()])
    for note in splits.notes:
        print(f"note: {note}")
    if splits.bad_files:
        print(f"note: {len(splits.bad_files)} file(s) do not decode and are left out; `cnnlab data verify` lists them")
    return 0


def _data_show(args: argparse.Namespace) -> int:
    out = args.out or f"{args.name}_{args.split}{'_augmented' if args.augment else ''}.png"
    path = api.show_samples(_data_config(args.name, args.items), args.split, args.n, args.augment, out)
    print(f"wrote {path}")
    return 0


def _data_verify(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .data import DATASETS
    from .data.inspect import verify_tree

    if args.target in DATASETS:
        return _verify_dataset(args)
    root = Path(args.target)
    if not root.is_dir():
        raise ConfigError(f"'{args.target}' is neither a dataset name ({', '.join(DATASETS)}) nor a folder")
    config = _data_config("imagefolder", [f"data.root={root}", *args.items])
    report = verify_tree(root, config.data.max_pixels)
    for path, problem in sorted(report.problems.items()):
        print(f"BAD  {path}: {problem}")
    for note in report.notes:
        print(f"note: {note}")
    print(f"checked {report.checked:,} images in {report.classes} classes: {len(report.problems)} bad")
    return 1 if report.problems else 0


def _verify_dataset(args: argparse.Namespace) -> int:
    from .data import FileList, load_raw
    from .data.inspect import verify_files

    config = _data_config(args.target, args.items)
    source = load_raw(config.data)  # the readers validate headers, sizes, labels (DataError on a problem)
    splits = {"train": source.train, "val": source.val, "test": source.test}
    bad: dict[str, str] = {}
    for split in splits.values():
        if isinstance(split, FileList):
            bad.update(verify_files(split, config.data.max_pixels))
    for path, problem in sorted(bad.items()):
        print(f"BAD  {path}: {problem}")
    counts = ", ".join(f"{name} {len(s):,}" for name, s in splits.items() if s is not None)
    print(f"{args.target} from {source.source}: {counts}; {len(source.classes)} classes; {len(bad)} bad files")
    return 1 if bad else 0


def _data_download(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .data.download import download_dataset
    from .data.roots import candidate_roots

    root = Path(args.root).expanduser() if args.root else candidate_roots(None)[0]
    for path in download_dataset(args.name, root, args.mirror):
        print(f"ok   {path}")
    print(f"{args.name} is in {root}")
    return 0


def _optimizers(args: argparse.Namespace) -> int:
    from .optim import OPTIMIZERS

    rows = []
    for name in OPTIMIZERS:
        info = OPTIMIZERS.get(name)
        options = ", ".join(f"{k}={v.default}" for k, v in info.options.items()) or "-"
        rows.append((name, f"{info.default_lr:g}", options, info.paper))
    _table(("optimizer", "default lr", "options", "paper"), rows)
    return 0


def _config(args: argparse.Namespace) -> int:
    import yaml

    from .config import to_dict

    config, overrides = split_items(args.items)
    print(yaml.safe_dump(to_dict(api.make_config(config, overrides)), sort_keys=False), end="")
    return 0


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*headers, box=None, pad_edge=False, header_style="bold")
    for row in rows:
        table.add_row(*row)
    console = Console(width=None if sys.stdout.isatty() else 200)
    console.print(table)


if __name__ == "__main__":
    sys.exit(main())
