"""Pictures that explain: a run's kernels, feature maps, predictions, deconvnet projections and kernels
epoch by epoch; optimizer paths on 2-D
surfaces; a schedule's learning rate over training."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..explain import deconv, evolution, filters, predictions
from ..explain import features as feature_maps
from ..explain.deconv import Projections
from ..io import check_output_file
from .training import make_config

__all__ = ["PathsPicture", "Projections", "deconv", "evolution", "feature_maps", "filters", "lr_plot",
           "optim_paths", "parse_rates", "predictions"]


@dataclass(frozen=True)
class PathsPicture:
    surface: str
    png: Path
    gif: Path
    ends: dict[str, tuple[float, float]]  # optimizer -> where its path ended


def parse_rates(items: Sequence[str]) -> dict[str, float]:
    """['adam=0.05'] -> {'adam': 0.05}."""
    rates = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            rates[name] = float(value)
        except ValueError:
            raise ConfigError(f"--lr '{item}' must look like NAME=RATE, e.g. adam=0.05") from None
    return rates


def optim_paths(surface: str = "all", optimizers: Sequence[str] = ("sgd", "momentum", "nesterov", "rmsprop", "adam"),
                rates: Mapping[str, float] | None = None, steps: int | None = None,
                out: str | Path = "runs/optim_paths") -> list[PathsPicture]:
    """Each optimizer's trajectory on a 2-D surface (or all of them), as a PNG and an animated GIF."""
    from ..experiments.trajectories import SURFACES, learning_rate, optimizer_paths
    from ..viz.trajectories import animate_paths, plot_paths

    surfaces = list(SURFACES) if surface == "all" else [surface]
    pictures = []
    for name in surfaces:
        paths = optimizer_paths(name, optimizers, rates, steps)
        used = {n: learning_rate(SURFACES[name], n, rates) for n in optimizers}
        png = Path(out) / f"{name}.png"
        plot_paths(SURFACES[name], paths, used, png)
        gif = animate_paths(SURFACES[name], paths, used, Path(out) / f"{name}.gif")
        ends = {n: (float(p[-1, 0]), float(p[-1, 1])) for n, p in paths.items()}
        pictures.append(PathsPicture(name, png, Path(gif), ends))
    return pictures


def lr_plot(config: str | None = None, overrides: Sequence[str] = (), out: str | Path = "runs/lr_schedule.png"
            ) -> dict[str, Any]:
    """The learning rate a config's schedule gives over training, drawn; its first, largest and last values."""
    from ..viz.lr import plot_schedule, schedule_points

    run_config = make_config(config, overrides)
    check_output_file(Path(out), "--out", (".png",))
    plot_schedule(run_config, out)
    _, rates = schedule_points(run_config)
    return {"path": Path(out), "first": float(rates[0]), "max": float(rates.max()), "last": float(rates[-1]),
            "epochs": run_config.train.epochs}
