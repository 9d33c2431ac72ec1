"""What the command groups share: how a command is declared, the repeated arguments, and how results are
printed (tables, numbers)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import ConfigError

Handler = Callable[[argparse.Namespace], int]


def command(sub: Any, name: str, handler: Handler, help_text: str, **extra: Any) -> argparse.ArgumentParser:
    """A sub-command whose `handler(args)` returns the exit code; `--debug` works after it too."""
    parser = sub.add_parser(name, help=help_text, description=help_text, **extra)
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    parser.set_defaults(handler=handler)
    return parser


def group(sub: Any, name: str, help_text: str, description: str) -> Any:
    """A command group (`cnnlab data ...`) and the sub-parsers of its commands."""
    parser = sub.add_parser(name, help=help_text, description=description)
    return parser.add_subparsers(title=f"{name} commands", metavar="COMMAND")


def add_items(parser: argparse.ArgumentParser, config_file: bool = True, help_text: str | None = None) -> None:
    metavar = "CONFIG.yaml|key=value" if config_file else "key=value"
    parser.add_argument("items", nargs="*", metavar=metavar, help=help_text or (
        "an optional YAML config, then overrides such as model=convnet epochs=15 lr=0.1" if config_file
        else "config overrides such as data.root=DIR"))


def add_mlflow(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mlflow", metavar="URI", type=_tracking_uri,
                        help="also log to MLflow at this tracking URI (http://host:5000, sqlite:///FILE.db): "
                             "train.mlflow=true train.mlflow_uri=URI; train.mlflow=true alone logs to RUNS_DIR/mlruns")
    parser.add_argument("--mlflow-required", action="store_true",
                        help="refuse to train (exit 2) when the MLflow store cannot be written or reached, instead of "
                             "one warning and training untracked: train.mlflow_required=true")


def _tracking_uri(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("--mlflow takes a tracking URI (http://host:5000, sqlite:///FILE.db); "
                                         "for the default store (RUNS_DIR/mlruns) give train.mlflow=true instead")
    return text


def add_run_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (runs/NAME)")


def add_checkpoint(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", default="auto",
                        help="best, last, previous, a checkpoint file, or auto (default: the weights of the "
                             "run's test score)")


def add_split(parser: argparse.ArgumentParser, default: str = "test") -> None:
    parser.add_argument("--split", choices=("test", "val"), default=default,
                        help=f"which held-out split (default: {default})")


def add_device(parser: argparse.ArgumentParser, default: str = "the run's") -> None:
    parser.add_argument("--device", help=f"auto, cpu, cuda, cuda:N or mps (default: {default})")


def split_items(items: Sequence[str]) -> tuple[str | None, list[str]]:
    """Positional words: at most one config file (no '='), the rest key=value overrides."""
    files = [item for item in items if "=" not in item]
    if len(files) > 1:
        raise ConfigError(f"give at most one config file, got {', '.join(files)} (overrides look like key=value)")
    return (files[0] if files else None), [item for item in items if "=" in item]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    grid = Table(*headers, box=None, pad_edge=False, header_style="bold")
    for row in rows:
        grid.add_row(*row)
    # a terminal wraps at its width; a file, a pipe or a page gets every row on one line, however wide (a
    # table wrapped at a guessed width split its Δ header and intervals over three lines)
    console = Console(width=None if sys.stdout.isatty() else max(200, Console(width=100_000).measure(grid).maximum))
    with console.capture() as captured:
        console.print(grid)
    print("\n".join(line.rstrip() for line in captured.get().splitlines()))  # rich pads every cell


def top5_text(value: float | None, classes: int | None) -> str:
    """'  top-5 97.10%', or nothing where top-5 says nothing (five classes or fewer: always 100%)."""
    if value is None or (classes is not None and classes <= 5):
        return ""
    return f"  top-5 {100 * value:.2f}%"


def fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def human(count: float) -> str:
    """12345678 -> '12.3M'."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(count) >= scale:
            return f"{count / scale:.1f}{unit}"
    return f"{count:.0f}"


def percent(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}%"
